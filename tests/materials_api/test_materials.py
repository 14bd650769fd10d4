"""The material bank end to end, on the local store and on a real MinIO server."""

import hashlib
import json
import time
import uuid

import pytest
from sqlalchemy import func, select

from chain.material_verify import verify_material
from chain.proof import ProofBundle
from materials_api.bank.models import Material
from tests.conftest import MATERIAL_BUNDLE

USCC = "91350100M000100Y43"
OTHER = "91110000600037341L"
PDF = b"%PDF-1.7\n" + b"lease contract body " * 500 + b"\n%%EOF\n"


@pytest.fixture(params=["local", "minio"])
def settings(request, settings):
    if request.param == "minio":
        server = request.getfixturevalue("minio")
        return settings.model_copy(update={
            "storage": "s3", "s3_endpoint": server.endpoint, "s3_access_key": server.access_key,
            "s3_secret_key": server.secret_key, "s3_bucket": f"t-{uuid.uuid4().hex[:12]}", "s3_retention_days": 1})
    return settings


@pytest.fixture
def bank(api, keys, runtime):
    h = {"Authorization": keys["registrar"]}
    for uscc, name in ((USCC, "福建示例科技有限公司"), (OTHER, "北京另一家公司")):
        assert api.post("/api/v1/enterprises", json={"uscc": uscc, "name": name}, headers=h).status_code == 201
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role

    with runtime.sessions.begin() as s:
        _, other_key = create_key(s, "另一家公司", Role.ENTERPRISE, OTHER)
    keys["other"] = f"Bearer {other_key}"
    return api


def refused(r, status: int, code: str) -> None:
    """A refusal, with the reason code a caller's program acts on."""
    assert (r.status_code, r.json().get("code")) == (status, code), r.text


def upload(api, key, content=PDF, name="房屋租赁合同.pdf", **fields):
    return api.post("/api/v1/materials", headers={"Authorization": key},
                    files={"file": (name, content, "application/octet-stream")}, data=fields)


def anchor(api):
    return api.app.state.anchorer.run_once(force=True)


def test_upload_confirm_anchor_prove_verify(bank, keys, runtime):
    r = upload(bank, keys["enterprise"], valid_until="2099-12-31")
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["state"] == "uploaded" and m["folder"] == "lease_contract" and m["classified"]
    assert m["sha256"] == hashlib.sha256(PDF).hexdigest() and m["sm3"] == hashlib.new("sm3", PDF).hexdigest()
    assert bank.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": keys["enterprise"]}).status_code == 409
    c = bank.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]}).json()
    assert c["state"] == "confirmed" and c["label"] == "self_attested"
    assert anchor(bank).anchored == 1
    got = bank.get(f"/api/v1/materials/{m['id']}", headers={"Authorization": keys["enterprise"]}).json()
    assert got["state"] == "anchored"
    bundle = bank.get(f"/api/v1/materials/{m['id']}/proof", headers={"Authorization": keys["enterprise"]}).json()
    assert bundle["version"] == MATERIAL_BUNDLE and USCC not in json.dumps(bundle)  # no plain USCC in the proof
    # Independently of the service: the chain alone says VALID.
    verdict = verify_material(ProofBundle.from_json(bundle), content_sha256=hashlib.sha256(PDF).digest(),
                              client=runtime.chain.client,
                              trust=runtime.chain.trust)
    assert verdict.status.value == "VALID", verdict.as_dict()
    # Through the API, by file (anyone) and by hash.
    r = bank.post("/api/v1/verify/material", files={"file": ("x.pdf", PDF)}, data={"bundle": json.dumps(bundle)})
    assert r.json()["status"] == "VALID"
    changed = PDF[:100] + bytes([PDF[100] ^ 1]) + PDF[101:]
    r = bank.post("/api/v1/verify/material", files={"file": ("x.pdf", changed)}, data={"bundle": json.dumps(bundle)})
    checks = {c["name"]: c for c in r.json()["checks"]}
    assert r.json()["status"] == "INVALID" and checks["integrity"]["reason"] == "hash_mismatch"
    r = bank.post("/api/v1/verify/material", json={"sha256": m["sha256"], "bundle": bundle})
    assert r.json()["status"] == "VALID"
    content = bank.get(f"/api/v1/materials/{m['id']}/content", headers={"Authorization": keys["enterprise"]})
    assert content.status_code == 200 and content.content == PDF


def test_revoked_and_withdrawn_materials_verify_invalid(bank, keys, runtime):
    ids = []
    for i in range(3):
        m = upload(bank, keys["enterprise"], content=PDF + bytes([i]), name=f"财务报表{i}.pdf").json()
        bank.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
        ids.append(m["id"])
    anchor(bank)
    bundles = [bank.get(f"/api/v1/materials/{i}/proof", headers={"Authorization": keys["enterprise"]}).json() for i in ids]
    r = bank.post(f"/api/v1/materials/{ids[0]}/revoke", json={"reason": "伪造"}, headers={"Authorization": keys["clerk"]})
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    bank.post(f"/api/v1/materials/{ids[1]}/withdraw", headers={"Authorization": keys["enterprise"]})
    assert anchor(bank).revoked == 2
    for bundle, content, expected in zip(bundles, (PDF + b"\0", PDF + b"\1", PDF + b"\2"), ("INVALID", "INVALID", "VALID")):
        v = verify_material(ProofBundle.from_json(bundle), content_sha256=hashlib.sha256(content).digest(),
                            client=runtime.chain.client,
                              trust=runtime.chain.trust)
        assert v.status.value == expected
        if expected == "INVALID":
            assert {c.name: c.reason for c in v.checks}["status"] == "revoked"
    assert anchor(bank).revoked == 0  # nothing sent twice
    again = bank.post(f"/api/v1/materials/{ids[0]}/revoke", json={"reason": "x"}, headers={"Authorization": keys["clerk"]})
    assert again.status_code == 409


def test_chain_unreachable_is_error_never_invalid_or_valid(bank, keys, runtime):
    m = upload(bank, keys["enterprise"]).json()
    bank.post(f"/api/v1/materials/{m['id']}/confirm", headers={"Authorization": keys["enterprise"]})
    anchor(bank)
    bundle = ProofBundle.from_json(bank.get(f"/api/v1/materials/{m['id']}/proof",
                                            headers={"Authorization": keys["enterprise"]}).json())
    from chain.client import ChainClient
    from tests.conftest import free_port

    dead = ChainClient.from_url(f"http://127.0.0.1:{free_port()}", retries=0, request_timeout=0.3)
    dead._chain_id = None
    v = verify_material(bundle, content_sha256=hashlib.sha256(PDF).digest(), client=dead,
                       trust=runtime.chain.trust)
    assert v.status.value == "ERROR"
    assert {c.name: c.status.value for c in v.checks} == {"integrity": "VALID", "proof": "VALID", "anchor": "ERROR",
                                                         "issuer": "ERROR", "status": "ERROR"}


def test_another_enterprise_can_neither_read_list_version_nor_revoke(bank, keys):
    m = upload(bank, keys["enterprise"]).json()
    other = {"Authorization": keys["other"]}
    refused(bank.get(f"/api/v1/materials/{m['id']}", headers=other), 404, "material_not_found")
    refused(bank.get(f"/api/v1/materials/{m['id']}/content", headers=other), 404, "material_not_found")
    refused(bank.get(f"/api/v1/materials/{m['id']}/proof", headers=other), 404, "material_not_found")
    refused(bank.get(f"/api/v1/materials?uscc={USCC}", headers=other), 403, "not_your_enterprise")
    assert bank.get("/api/v1/materials", headers=other).json()["items"] == []
    refused(bank.post(f"/api/v1/materials/{m['id']}/versions", headers=other, files={"file": ("a.pdf", PDF)}),
            404, "material_not_found")
    refused(bank.post(f"/api/v1/materials/{m['id']}/withdraw", headers=other), 404, "material_not_found")
    refused(bank.post(f"/api/v1/materials/{m['id']}/confirm", headers=other), 404, "material_not_found")
    refused(bank.post(f"/api/v1/materials/{m['id']}/revoke", json={"reason": "x"}, headers=other), 403, "role_forbidden")
    assert bank.get(f"/api/v1/materials/{m['id']}", headers={"Authorization": keys["enterprise"]}).json()["state"] == "uploaded"


def test_clerk_files_on_behalf_with_original_checked_label(bank, keys):
    r = upload(bank, keys["clerk"], name="营业执照副本.jpg", content=b"\xff\xd8\xff\xe0" + b"jpeg" * 100, uscc=USCC)
    assert r.status_code == 201
    assert r.json()["state"] == "confirmed" and r.json()["label"] == "original_checked"
    assert r.json()["folder"] == "business_licence"
    assert upload(bank, keys["clerk"]).json()["code"] == "uscc_required"


def test_versions_supersede_and_keep_their_lineage(bank, keys):
    h = {"Authorization": keys["enterprise"]}
    first = upload(bank, keys["enterprise"], folder="financial_statement", name="2023年报.pdf").json()
    bank.post(f"/api/v1/materials/{first['id']}/confirm", headers=h)
    second = bank.post(f"/api/v1/materials/{first['id']}/versions", headers=h,
                       files={"file": ("2024年报.pdf", PDF + b"2024")}).json()
    assert second["version"] == 2 and second["lineage_id"] == first["id"] and second["folder"] == "financial_statement"
    assert bank.get(f"/api/v1/materials/{first['id']}", headers=h).json()["state"] == "confirmed"
    bank.post(f"/api/v1/materials/{second['id']}/confirm", headers=h)
    assert bank.get(f"/api/v1/materials/{first['id']}", headers=h).json()["state"] == "superseded"
    r = bank.post(f"/api/v1/materials/{first['id']}/versions", headers=h, files={"file": ("x.pdf", PDF)})
    assert r.status_code == 409 and r.json()["code"] == "not_current"


def test_reuse_fills_applications_and_counts_verifications(bank, keys):
    h = {"Authorization": keys["enterprise"]}
    made = {}
    for folder, name in (("business_licence", "营业执照.pdf"), ("lease_contract", "租赁合同.pdf"),
                         ("identity_document", "法人身份证.pdf")):
        m = upload(bank, keys["enterprise"], content=PDF + name.encode(), name=name, folder=folder).json()
        bank.post(f"/api/v1/materials/{m['id']}/confirm", headers=h)
        made[folder] = m["id"]
    # An unconfirmed qualification must not be reused.
    upload(bank, keys["enterprise"], content=PDF + b"q", name="资质证书.pdf", folder="qualification")
    anchor(bank)
    r = bank.post("/api/v1/applications", json={"service_item": "food_business_permit"}, headers=h)
    assert r.status_code == 201
    app_ = r.json()
    assert app_["missing"] == ["qualification"]
    filled = {i["folder"]: i["material_id"] for i in app_["items"]}
    assert filled["lease_contract"] == made["lease_contract"]
    v = bank.post(f"/api/v1/applications/{app_['id']}/materials/{made['lease_contract']}/verify",
                  headers={"Authorization": keys["clerk"]})
    assert v.status_code == 200 and v.json()["verdict"]["status"] == "VALID"
    bank.post(f"/api/v1/applications/{app_['id']}/materials/{made['lease_contract']}/verify",
              headers={"Authorization": keys["clerk"]})  # the same check again is the same reuse
    m = bank.get(f"/api/v1/materials/{made['lease_contract']}", headers=h).json()
    assert m["reuse_count"] == 1
    reuses = bank.get(f"/api/v1/materials/{made['lease_contract']}/reuses", headers=h).json()
    assert reuses[0]["verifier_org"] == "org-clerk" and reuses[0]["service_item"] == "food_business_permit"
    refused(bank.post(f"/api/v1/applications/{app_['id']}/materials/999999/verify",
                      headers={"Authorization": keys["clerk"]}), 404, "material_not_in_application")
    refused(bank.post("/api/v1/applications", json={"service_item": "nope"}, headers=h), 404, "service_item_not_found")
    refused(bank.get(f"/api/v1/applications/{app_['id']}", headers={"Authorization": keys["other"]}),
            404, "application_not_found")


def test_expired_material_is_not_reused(bank, keys, runtime):
    h = {"Authorization": keys["enterprise"]}
    m = upload(bank, keys["enterprise"], name="营业执照.pdf", folder="business_licence").json()
    bank.post(f"/api/v1/materials/{m['id']}/confirm", headers=h)
    anchor(bank)
    with runtime.sessions.begin() as s:
        s.get(Material, m["id"]).valid_until = int(time.time()) - 1
    app_ = bank.post("/api/v1/applications", json={"service_item": "bank_account_opening"}, headers=h).json()
    assert "business_licence" in app_["missing"]


@pytest.mark.parametrize("kwargs, status, code", [
    ({"content": b""}, 422, "empty_file"),
    ({"folder": "no_such_folder"}, 422, "unknown_folder"),
    ({"content": b"MZ\x90\x00 executable"}, 415, "unsupported_content"),
    ({"content": b"<html><script>alert(1)</script></html>", "name": "a.html"}, 415, "unsupported_content"),
    ({"valid_until": "2001-01-01"}, 422, "already_expired"),
    ({"valid_until": "next week"}, 422, "valid_until_format"),
])
def test_bad_uploads_are_refused_and_leave_nothing(bank, keys, runtime, kwargs, status, code):
    r = upload(bank, keys["enterprise"], **kwargs)
    assert r.status_code == status and r.json()["code"] == code
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Material)) == 0
    assert not list(runtime.settings.spool_dir.glob("*"))


def test_oversize_upload_is_413_and_leaves_nothing(bank, keys, runtime):
    runtime.settings.max_upload_bytes = 1000
    try:
        r = upload(bank, keys["enterprise"], content=b"%PDF-" + b"x" * 5000)
    finally:
        runtime.settings.max_upload_bytes = 512 * 1024 * 1024
    assert r.status_code == 413 and r.json()["code"] == "file_too_large"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Material)) == 0
    assert not list(runtime.settings.spool_dir.glob("*"))


def test_malicious_file_name_never_becomes_a_path(bank, keys, runtime):
    r = upload(bank, keys["enterprise"], name="../../../../etc/cron.d/evil\x00.pdf")
    assert r.status_code == 201
    name = r.json()["file_name"]
    assert name.startswith("evil") and name.endswith(".pdf") and "/" not in name and ".." not in name
    if runtime.settings.storage == "local":
        stored = [p for p in runtime.settings.objects_dir.rglob("*") if p.is_file()]
        assert [p.name for p in stored] == [hashlib.sha256(PDF).hexdigest()]


def test_truncated_upload_is_refused_and_stores_nothing(bank, keys, runtime):
    boundary = "qiyemaboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + PDF[:500]  # no closing boundary
    r = bank.post("/api/v1/materials", content=body, headers={"Authorization": keys["enterprise"],
                  "content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 400 and r.json()["code"] == "upload_truncated"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Material)) == 0
    assert not list(runtime.settings.spool_dir.glob("*"))
    assert bank.post("/api/v1/materials", content=b"x", headers={"Authorization": keys["enterprise"],
                     "content-type": "application/pdf"}).json()["code"] == "multipart_required"


def test_same_bytes_twice_are_stored_once_per_account(bank, keys, runtime):
    first = upload(bank, keys["enterprise"], name="租赁合同.pdf")
    retry = upload(bank, keys["enterprise"], name="租赁合同副本.pdf")  # same bytes, same folder: a retry
    assert first.status_code == 201 and retry.status_code == 200
    a, b = first.json(), retry.json()
    elsewhere = upload(bank, keys["enterprise"], name="x.pdf", folder="other")
    assert elsewhere.status_code == 201 and elsewhere.json()["id"] != a["id"]
    c = upload(bank, keys["other"], name="租赁合同.pdf").json()
    assert a["id"] == b["id"] and a["sha256"] == c["sha256"] and c["id"] != a["id"]
    store = runtime.storage
    assert store.exists("e1", a["sha256"]) and store.exists("e2", a["sha256"])
    if runtime.settings.storage == "local":
        assert len([p for p in (runtime.settings.objects_dir / "e1").rglob("*") if p.is_file()]) == 1


def test_folders_list_counts_and_classification(bank, keys):
    h = {"Authorization": keys["enterprise"]}
    uploaded = [upload(bank, keys["enterprise"], name="公司章程.pdf", content=PDF + b"1").json(),
                upload(bank, keys["enterprise"], name="scan001.pdf", content=PDF + b"2").json()]
    counts = {f["code"]: f["count"] for f in bank.get("/api/v1/materials", headers=h).json()["folders"]}
    assert counts["articles_of_association"] == 0 and counts["other"] == 0  # not confirmed: in no folder yet
    for m in uploaded:
        assert bank.post(f"/api/v1/materials/{m['id']}/confirm", headers=h).status_code == 200
    listing = bank.get("/api/v1/materials", headers=h).json()
    counts = {f["code"]: f["count"] for f in listing["folders"]}
    assert counts["articles_of_association"] == 1 and counts["other"] == 1
    only = bank.get("/api/v1/materials?folder=other", headers={"Authorization": keys["enterprise"]}).json()
    assert [m["file_name"] for m in only["items"]] == ["scan001.pdf"]
    assert bank.get("/api/v1/materials?folder=bogus", headers={"Authorization": keys["enterprise"]}).status_code == 422


def test_malformed_bundles_are_refused(bank):
    for bundle, code in (({"version": 9}, "bundle_version"), ({"version": 1, "leaf": {}}, "bundle_malformed")):
        r = bank.post("/api/v1/verify/material", json={"sha256": "00" * 32, "bundle": bundle})
        assert r.status_code == 422 and r.json()["code"] == code


def test_object_store_down_is_503_and_records_nothing(api, keys, runtime, tmp_path):
    if runtime.settings.storage != "s3":
        pytest.skip("the local store has no server to stop")
    from materials_api.platform.storage import S3ObjectStore
    from tests.conftest import MinioServer

    (tmp_path / "down").mkdir()
    server = MinioServer(tmp_path / "down")
    server.start()
    runtime.storage = S3ObjectStore(server.endpoint, server.access_key, server.secret_key, "down-test")
    api.app.state.materials.store = runtime.storage
    api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "福建示例科技有限公司"},
             headers={"Authorization": keys["registrar"]})
    assert upload(api, keys["enterprise"]).status_code == 201
    server.stop()
    r = upload(api, keys["enterprise"], content=PDF + b"more")
    assert r.status_code == 503 and r.json()["code"] == "storage_unavailable"
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Material)) == 1
    assert not list(runtime.settings.spool_dir.glob("*"))
    health = api.get("/healthz")
    assert health.status_code == 503 and health.json()["storage"]["ok"] is False


def test_the_file_name_survives_fields_sent_after_the_file(bank, keys):
    """Browsers send FormData parts in the order they were appended: file first, then fields."""
    boundary = "qiyema-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"营业执照副本.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + PDF + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\nbusiness_licence"
            f"\r\n--{boundary}--\r\n").encode()
    r = bank.post("/api/v1/materials", content=body, headers={"Authorization": keys["enterprise"],
                  "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    assert r.json()["file_name"] == "营业执照副本.pdf" and r.json()["title"] == "营业执照副本.pdf"
    assert r.json()["folder"] == "business_licence"
