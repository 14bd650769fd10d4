"""One scan, different views: public, bank, inspector, the enterprise; consent and the access log;
records issued only by their category's issuer; status changes visible to the very next scan."""

import io
import time

import pytest
from PIL import Image

from chain.ledger import RecordStatus
from codes.scan import scan
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from tests.conftest import grant_writers

USCC = "91350100M000100Y43"
PDF = b"%PDF-1.7\n" + b"material " * 300
BANK = "工商银行杨浦支行"


@pytest.fixture
def world(api, keys, runtime):
    """A registered enterprise with a licence, a food permit, a penalty and a credit grade."""
    h = {"Authorization": keys["registrar"]}
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "上海杨浦示例餐饮有限公司"}, headers=h).status_code == 201
    with runtime.sessions.begin() as s:
        for name, org, role, scope in (("licence", "杨浦区市场监管局", Role.ISSUER, "licence"),
                                       ("food", "杨浦区市场监管局食品科", Role.ISSUER, "permit.food"),
                                       ("metrology", "杨浦区计量所", Role.ISSUER, "permit.metrology"),
                                       ("penalty", "杨浦区市场监管局执法大队", Role.ISSUER, "regulatory.penalty"),
                                       ("credit", "杨浦区信用办", Role.ISSUER, "credit.grade"),
                                       ("abnormal", "杨浦区市场监管局登记科", Role.ISSUER, "regulatory.abnormal"),
                                       ("bank", BANK, Role.BANK, None), ("bank2", "另一家银行", Role.BANK, None),
                                       ("inspector", "杨浦区执法检查员", Role.INSPECTOR, None)):
            _, plain = create_key(s, org, role, scope)
            keys[name] = f"Bearer {plain}"
    grant_writers(runtime)  # the background worker's grants, before the first write

    def issue(who, **body):
        r = api.post("/api/v1/records", json={"uscc": USCC, **body}, headers={"Authorization": keys[who]})
        assert r.status_code == 201, r.text
        return r.json()

    made = {
        "licence": issue("licence", kind="business_licence", number="91350100M000100Y43",
                         data={"legal_representative": "张三", "legal_representative_id": "350102199001011234",
                               "addresses": ["杨浦区国定路1号", "杨浦区政立路2号"], "scope": "餐饮服务"}),
        "permit": issue("food", kind="food_business", number="JY13101100000001", valid_until="2030-12-31",
                        data={"items": "热食类食品制售"}),
        "penalty": issue("penalty", kind="administrative_penalty", number="沪市监杨处〔2025〕1号",
                         data={"fact": "超范围经营", "amount_yuan": 5000, "party_id": "350102199001011234"}),
        "credit": issue("credit", kind="credit_grade", data={"grade": "B"}),
    }
    return made


def code_of(api, keys):
    r = api.get(f"/api/v1/enterprises/{USCC}/code.png", headers={"Authorization": keys["registrar"]})
    return scan(r.content)[0]


def verify(api, code, key=None):
    headers = {"Authorization": key} if key else {}
    r = api.post("/api/v1/verify/code", json={"code": code}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def item(view, group, record_id):
    return next(i for i in view[group] if i["id"] == record_id)


def test_records_are_issued_on_chain_by_their_category_issuer_only(api, keys, runtime, world):
    ledger = runtime.chain.ledger
    from materials_api.records.models import Record

    with runtime.sessions() as s:
        permit = s.get(Record, world["permit"]["id"])
    assert ledger.record_of(permit.root, permit.leaf_index).status == RecordStatus.VALID
    assert ledger.record_of(permit.root, permit.leaf_index).category == "permit.food"
    r = api.post("/api/v1/records", json={"uscc": USCC, "kind": "measurement_standard", "data": {}},
                 headers={"Authorization": keys["food"]})
    assert r.status_code == 403 and r.json()["code"] == "category_forbidden"
    r = api.post(f"/api/v1/records/{world['permit']['id']}/status", json={"status": "revoked"},
                 headers={"Authorization": keys["metrology"]})
    assert r.status_code == 403 and r.json()["code"] == "category_forbidden"
    assert api.post("/api/v1/records", json={"uscc": USCC, "kind": "food_business", "data": {}},
                    headers={"Authorization": keys["enterprise"]}).status_code == 403
    assert ledger.record_of(permit.root, permit.leaf_index).status == RecordStatus.VALID


def test_public_sees_public_data_only_with_personal_data_masked(api, keys, world):
    body = verify(api, code_of(api, keys))
    assert body["status"] == "VALID"
    view = body["view"]
    assert view["audience"] == "public"
    assert "credit" not in view and "materials" not in view and "access_log" not in view
    licence = item(view, "licence", world["licence"]["id"])
    assert licence["data"]["legal_representative_id"] == "3501**********1234"
    assert licence["data"]["addresses"] == ["杨浦区国定路1号", "杨浦区政立路2号"]  # 一照多址
    assert licence["verdict"]["status"] == "VALID", licence["verdict"]
    assert {c["name"] for c in licence["verdict"]["checks"]} == {"integrity", "anchor", "issuer", "status"}
    penalty = item(view, "regulatory", world["penalty"]["id"])
    assert penalty["data"]["party_id"] == "3501**********1234" and penalty["data"]["amount_yuan"] == 5000
    log = api.get("/api/v1/access-log", headers={"Authorization": keys["enterprise"]}).json()
    assert log == []  # public data is not a logged read


def test_revoking_a_permit_shows_in_the_next_scan(api, keys, runtime, world):
    code = code_of(api, keys)
    assert item(verify(api, code)["view"], "permit", world["permit"]["id"])["verdict"]["status"] == "VALID"
    r = api.post(f"/api/v1/records/{world['permit']['id']}/status", json={"status": "revoked", "reason": "食品安全检查不合格"},
                 headers={"Authorization": keys["food"]})
    assert r.status_code == 200
    permit = item(verify(api, code)["view"], "permit", world["permit"]["id"])
    assert permit["status"] == "revoked" and permit["verdict"]["status"] == "INVALID"
    assert {c["name"]: c["reason"] for c in permit["verdict"]["checks"]}["status"] == "record_revoked"
    from materials_api.records.models import Record

    with runtime.sessions() as s:
        permit = s.get(Record, world["permit"]["id"])
    assert runtime.chain.ledger.record_of(permit.root, permit.leaf_index).status == RecordStatus.REVOKED
    r = api.post(f"/api/v1/records/{world['permit']['id']}/status", json={"status": "valid", "reason": "整改完成"},
                 headers={"Authorization": keys["food"]})
    assert item(verify(api, code)["view"], "permit", world["permit"]["id"])["verdict"]["status"] == "VALID"


def test_abnormal_listing_and_deregistration_change_the_next_scan(api, keys, world):
    code = code_of(api, keys)
    h = {"Authorization": keys["registrar"]}
    api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "abnormal", "reason": "未按时公示年报"}, headers=h)
    listing = api.post("/api/v1/records", json={"uscc": USCC, "kind": "abnormal_listing", "data": {"reason": "未按时公示年报"}},
                       headers={"Authorization": keys["abnormal"]}).json()
    body = verify(api, code)
    assert {c["name"]: c["reason"] for c in body["checks"]}["status"] == "enterprise_abnormal"
    assert body["view"]["enterprise"]["status"] == "abnormal"
    assert item(body["view"], "regulatory", listing["id"])["verdict"]["status"] == "VALID"
    removed = api.post(f"/api/v1/records/{listing['id']}/status", json={"status": "removed"},
                       headers={"Authorization": keys["abnormal"]})
    assert removed.status_code == 200
    assert item(verify(api, code)["view"], "regulatory", listing["id"])["status"] == "removed"
    api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "deregistered"}, headers=h)
    body = verify(api, code)
    assert body["status"] == "INVALID" and {c["name"]: c["reason"] for c in body["checks"]}["status"] == "enterprise_deregistered"


def test_inspector_sees_regulatory_detail_and_records_an_inspection(api, keys, world):
    code = code_of(api, keys)
    view = verify(api, code, keys["inspector"])["view"]
    assert view["audience"] == "inspector"
    assert item(view, "regulatory", world["penalty"]["id"])["data"]["party_id"] == "350102199001011234"
    assert item(view, "credit", world["credit"]["id"])["data"]["grade"] == "B"
    assert view["inspection"] == []
    # An inspection comes with its photo, through /inspections only (its photo's type is read from
    # the bytes, never from data a writer chose).
    r = api.post("/api/v1/records", headers={"Authorization": keys["inspector"]},
                 json={"uscc": USCC, "kind": "inspection", "title": "食品安全日常检查",
                       "data": {"findings": "后厨卫生良好", "photo_sha256": "ab" * 32, "photo_type": "text/html"}})
    assert r.status_code == 422 and r.json()["code"] == "inspection_needs_photo"
    photo = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 140, 60)).save(photo, "JPEG")
    r = api.post("/api/v1/inspections", headers={"Authorization": keys["inspector"]},
                 files={"file": ("现场.jpg", photo.getvalue(), "image/jpeg")},
                 data={"uscc": USCC, "result": "passed", "findings": "后厨卫生良好；灭火器过期一具，已责令更换"})
    assert r.status_code == 201 and r.json()["chain"]["tx_hash"]
    view = verify(api, code, keys["inspector"])["view"]
    assert [i["title"] for i in view["inspection"]] == ["现场检查记录"]
    assert view["inspection"][0]["verdict"]["status"] == "VALID"
    assert api.post("/api/v1/records", headers={"Authorization": keys["inspector"]},
                    json={"uscc": USCC, "kind": "food_business", "data": {}}).status_code == 403
    public = verify(api, code)["view"]
    assert "inspection" not in public
    # The enterprise sees that an inspector opened its regulatory view (a passer-by's scan is not logged).
    log = api.get("/api/v1/access-log", headers={"Authorization": keys["enterprise"]}).json()
    views = [(e["role"], e["target"], e["purpose"]) for e in log if e["action"] == "scan_view"]
    assert views == [("inspector", f"inspector view of {USCC}", "scan")] * 2  # a static code names no purpose


def test_bank_gets_exactly_the_granted_materials_and_the_enterprise_sees_every_read(api, keys, world):
    h = {"Authorization": keys["enterprise"]}
    ids = {}
    for folder, name in (("lease_contract", "租赁合同.pdf"), ("financial_statement", "2024财务报表.pdf"),
                         ("identity_document", "法人身份证.pdf")):
        m = api.post("/api/v1/materials", headers=h, files={"file": (name, PDF + name.encode())},
                     data={"folder": folder}).json()
        api.post(f"/api/v1/materials/{m['id']}/confirm", headers=h)
        ids[folder] = m["id"]
    api.app.state.anchorer.run_once(force=True)
    issued = api.post("/api/v1/codes/dynamic", headers=h, json={"scope": {
        "verifier_org": BANK, "material_types": ["lease_contract", "financial_statement"], "purpose": "开立对公账户"}})
    assert issued.status_code == 201, issued.text
    grant_id = issued.json()["scope"]["grant_id"]
    body = verify(api, issued.json()["code"], keys["bank"])
    assert body["status"] == "VALID"
    granted = body["view"]["materials"]
    assert granted["status"] == "granted" and granted["purpose"] == "开立对公账户"
    assert sorted(m["id"] for m in granted["items"]) == sorted([ids["lease_contract"], ids["financial_statement"]])
    assert body["view"]["credit"][0]["data"]["grade"] == "B"
    for mid in (ids["lease_contract"], ids["financial_statement"]):
        got = api.get(f"/api/v1/materials/{mid}/content", headers={"Authorization": keys["bank"]})
        assert got.status_code == 200 and got.content.startswith(b"%PDF")
    # The ID card was never granted: the bank cannot know it exists, so it is "not found".
    refused = api.get(f"/api/v1/materials/{ids['identity_document']}/content", headers={"Authorization": keys["bank"]})
    assert refused.status_code == 404 and refused.json()["code"] == "material_not_found"
    other = verify(api, issued.json()["code"], keys["bank2"])["view"]["materials"]
    assert other["status"] == "denied" and other["items"] == []
    hidden = api.get(f"/api/v1/materials/{ids['lease_contract']}/content", headers={"Authorization": keys["bank2"]})
    assert hidden.status_code == 404 and hidden.json()["code"] == "material_not_found"
    # A receipt of what the bank checked, anchored.
    receipt = api.post("/api/v1/records", headers={"Authorization": keys["bank"]}, json={
        "uscc": USCC, "kind": "verification_receipt", "data": {"checked": sorted(ids.values())[:2], "purpose": "开立对公账户"}})
    assert receipt.status_code == 201
    # The enterprise revokes: the very next read is refused.
    assert api.post(f"/api/v1/consents/{grant_id}/revoke", headers=h).json()["active"] is False
    # The bank already holds the reference (its grant named the folder): 403, consent required.
    again = api.get(f"/api/v1/materials/{ids['lease_contract']}/content", headers={"Authorization": keys["bank"]})
    assert again.status_code == 403 and again.json()["code"] == "consent_required"
    log = api.get("/api/v1/access-log", headers=h).json()
    seen = [(e["organisation"], e["action"], e["outcome"]) for e in log]
    assert (BANK, "scan_view", "allowed") in seen
    assert seen.count((BANK, "material_download", "allowed")) == 2
    assert seen.count((BANK, "material_download", "denied")) == 2  # the ID card, then after revocation
    assert ("另一家银行", "consent_use", "denied") in seen and ("另一家银行", "material_download", "denied") in seen
    assert all(e["purpose"] == "开立对公账户" for e in log if e["action"] == "material_download" and e["outcome"] == "allowed")
    csv_text = api.get("/api/v1/access-log?format=csv", headers=h).text
    assert csv_text.lstrip("\ufeff").startswith("at,organisation,role,action") and BANK in csv_text
    own = verify(api, issued.json()["code"], keys["enterprise"])["view"]
    assert own["audience"] == "enterprise" and own["access_log"] and len(own["materials"]) == 3


def test_grant_expiry_and_refusals(api, keys, world, runtime):
    h = {"Authorization": keys["enterprise"]}
    m = api.post("/api/v1/materials", headers=h, files={"file": ("租赁合同.pdf", PDF)}, data={"folder": "lease_contract"}).json()
    api.post(f"/api/v1/materials/{m['id']}/confirm", headers=h)
    api.app.state.anchorer.run_once(force=True)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(runtime.clock.time() + 60))
    g = api.post("/api/v1/consents", headers=h, json={"verifier_organisation": BANK, "material_ids": [m["id"]],
                                                      "purpose": "贷款审批", "expires_at": soon})
    assert g.status_code == 201
    assert api.get(f"/api/v1/materials/{m['id']}/content", headers={"Authorization": keys["bank"]}).status_code == 200
    runtime.clock.advance(61)  # the grant's end passes
    assert api.get(f"/api/v1/materials/{m['id']}/content", headers={"Authorization": keys["bank"]}).status_code == 403
    past = api.post("/api/v1/consents", headers=h, json={"verifier_organisation": BANK, "material_ids": [m["id"]],
                                                         "purpose": "x", "expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["code"] == "grant_expiry"
    assert api.post("/api/v1/consents", headers=h, json={"verifier_organisation": BANK, "material_ids": [999],
                                                         "purpose": "x", "expires_at": "2099-01-01T00:00:00Z"}).status_code == 404
    assert api.post("/api/v1/consents", headers={"Authorization": keys["bank"]},
                    json={"verifier_organisation": BANK, "material_ids": [m["id"]], "purpose": "x",
                          "expires_at": "2099-01-01T00:00:00Z"}).status_code == 403
    denied = [e for e in api.get("/api/v1/access-log", headers=h).json() if e["outcome"] == "denied"]
    assert denied and denied[0]["organisation"] == BANK


def test_forged_code_shows_nothing(api, keys, world):
    code = code_of(api, keys)
    body = verify(api, code.replace("127.0.0.1", "127.0.0.2"))
    assert body["status"] == "INVALID" and body["view"] is None


def test_records_lost_by_a_reset_chain_are_issued_again(api, keys, runtime, world, settings):
    from chain.client import ChainClient
    from materials_api.platform.runtime import Runtime
    from materials_api.records.models import Record
    from materials_api.records.service import RecordService

    # A new in-process chain's genesis carries the wall-clock second: start it in a later second than
    # the first, so it is told apart from it (as a real reset is) and keeps nonces of its own.
    time.sleep(1.05 - time.time() % 1)
    fresh = ChainClient.in_process(poll_interval=0.01, timeout=10)  # a chain that knows nothing
    again = Runtime.open(settings, client=fresh)
    try:
        records = RecordService(again.sessions, again.chain, settings)
        assert records.requeue_lost() == 4
        assert records.reconcile() == 4
        with again.sessions() as s:
            places = [(r.root, r.leaf_index) for r in s.query(Record).all()]
        assert {again.chain.ledger.record_of(*place).status for place in places} == {RecordStatus.VALID}
        assert records.requeue_lost() == 0
    finally:
        again.close()


def test_the_public_records_download_as_json_and_csv_for_anyone(api, keys, world):
    import csv
    import io
    import random

    from codes.uscc import generate

    r = api.get(f"/api/v1/enterprises/{USCC}/public-records")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="{USCC}-public-records.json"'
    body = r.json()
    assert body["uscc"] == USCC and body["status"] == "active"
    by_kind = {i["kind"]: i for i in body["records"]}
    assert set(by_kind) == {"business_licence", "food_business", "administrative_penalty"}  # no credit grade
    assert by_kind["business_licence"]["data"]["legal_representative_id"] == "3501**********1234"
    assert by_kind["food_business"]["valid_until"] == "2030-12-31"
    assert {i["verdict"] for i in body["records"]} == {"VALID"}
    r = api.get(f"/api/v1/enterprises/{USCC}/public-records", params={"format": "csv"},
                headers={"Authorization": keys["bank"]})  # the same file for every caller
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert sorted(row["kind"] for row in rows) == sorted(by_kind)
    assert "350102199001011234" not in r.text
    assert api.get("/api/v1/enterprises/91350100M000200Y4X/public-records").status_code == 422
    missing = api.get(f"/api/v1/enterprises/{generate(random.Random(5))}/public-records")
    assert missing.status_code == 404 and missing.json()["code"] == "enterprise_not_found"


def test_an_inspection_is_checked_on_the_server_and_a_refusal_writes_nothing(api, keys, world, runtime):
    """The page checks an inspection too, but the server decides: each refusal has its reason
    code, and neither a record nor a photo is written (a script, not the page, sends these)."""
    from sqlalchemy import func, select

    from materials_api.records.models import Record

    photo = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 140, 60)).save(photo, "JPEG")
    good = {"uscc": USCC, "result": "passed", "findings": "证照齐全"}
    h = {"Authorization": keys["inspector"]}

    def records():
        with runtime.sessions() as s:
            return s.scalar(select(func.count()).select_from(Record).where(Record.kind == "inspection"))

    objects = lambda: sorted(p.name for p in (runtime.settings.objects_dir / "inspections").rglob("*") if p.is_file())  # noqa: E731
    before = objects()
    for fields, file, status, code in (
            ({**good, "findings": "   "}, ("现场.jpg", photo.getvalue(), "image/jpeg"), 422, "findings_missing"),
            ({**good, "result": "looks fine"}, ("现场.jpg", photo.getvalue(), "image/jpeg"), 422, "result_invalid"),
            (good, ("现场.jpg", b"GIF89a not a jpeg", "image/jpeg"), 415, "photo_not_image"),
            (good, ("现场.html", b"<html><script>alert(1)</script>", "image/jpeg"), 415, "photo_not_image")):
        r = api.post("/api/v1/inspections", headers=h, files={"file": file}, data=fields)
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
        assert records() == 0 and objects() == before
    r = api.post("/api/v1/inspections", headers=h, files={"file": ("现场.jpg", photo.getvalue(), "image/jpeg")}, data=good)
    assert r.status_code == 201 and records() == 1


def test_a_record_is_read_and_changed_only_by_whom_its_view_and_its_issuer_allow_in_words_and_logged(api, keys,
                                                                                                     runtime, world):
    """One bank's receipt is "not found" to another bank; a category's records change only by
    the organisation that issued them; a bank may not change what it may read. Each refusal is in
    the enterprise's access log with its reason; the enterprise reading its own records is not."""
    def as_(who):
        return {"Authorization": keys[who]}

    receipt = api.post("/api/v1/records", json={"uscc": USCC, "kind": "verification_receipt",
                                                "data": {"purpose": "开户核验"}}, headers=as_("bank"))
    assert receipt.status_code == 201, receipt.text
    receipt = receipt.json()["id"]
    assert api.get(f"/api/v1/records/{receipt}/proof", headers=as_("bank")).status_code == 200
    r = api.get(f"/api/v1/records/{receipt}/proof", headers=as_("bank2"))
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (404, "record_not_found", f"no record {receipt}"), r.text

    credit = world["credit"]["id"]
    r = api.post(f"/api/v1/records/{credit}/status", json={"status": "revoked"}, headers=as_("bank"))
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        403, "category_forbidden", f"{BANK} may not change credit.grade records")
    with runtime.sessions.begin() as s:
        keys["credit2"] = "Bearer " + create_key(s, "浦东新区信用办", Role.ISSUER, "credit.grade")[1]
    r = api.post(f"/api/v1/records/{credit}/status", json={"status": "revoked"}, headers=as_("credit2"))
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        403, "not_issuing_organisation", f"record {credit} was issued by another organisation; only it may change it")

    assert api.get(f"/api/v1/records/{credit}/proof", headers=as_("enterprise")).status_code == 200  # its own
    log = [(e["organisation"], e["action"], e["outcome"], e["reason"], e["target"])
           for e in api.get("/api/v1/access-log?limit=500", headers=as_("enterprise")).json()]
    assert ("另一家银行", "record_proof", "denied", "not in the caller's view",
            f"record {receipt} (verification_receipt)") in log
    assert (BANK, "record_status", "denied", f"{BANK} may not change credit.grade records",
            f"record {credit} (credit_grade)") in log
    assert ("浦东新区信用办", "record_status", "denied", "a change by an organisation that did not issue the record",
            f"record {credit} (credit_grade)") in log
    assert not [e for e in log if e[0] == "org-enterprise"], log  # its own reads are not "access by others"
