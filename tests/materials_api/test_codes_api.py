"""Codes through the API, verified live against the chain and the register."""

import pytest
from web3 import Web3

from codes import token
from codes.scan import scan
from codes.keyset import KeySet, OfflineSource
from codes.verify import Status, verify
from materials_api.codes.online_source import OnlineSource
from tests.conftest import CODE_VERSION, stranger_code_signer

USCC = "91350100M000100Y43"  # the enterprise key in conftest acts for this one
NAME = "福建示例科技有限公司"


@pytest.fixture
def registered(api, keys):
    r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": NAME}, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 201
    return USCC


def reasons(verdict: dict) -> dict:
    return {c["name"]: (c["status"], c["reason"]) for c in verdict["checks"]}


def static_url(api, keys) -> str:
    r = api.get(f"/api/v1/enterprises/{USCC}/code.png", headers={"Authorization": keys["registrar"]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    return scan(r.content)[0]


def test_static_code_image_scans_and_verifies_online(api, keys, registered):
    url = static_url(api, keys)
    assert url.startswith(f"HTTP://127.0.0.1:8000/V/{CODE_VERSION}S" + USCC)
    r = api.post("/api/v1/verify/code", json={"code": url})  # anyone, no key
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "VALID" and body["enterprise"]["name"] == NAME
    assert reasons(body)["issuer"] == ("VALID", "registrar_on_chain")
    assert reasons(body)["status"] == ("VALID", "enterprise_active")


def test_svg_and_access_rules(api, keys, registered):
    svg = api.get(f"/api/v1/enterprises/{USCC}/code.svg", headers={"Authorization": keys["enterprise"]})
    assert svg.status_code == 200 and NAME in svg.text
    assert api.get(f"/api/v1/enterprises/{USCC}/code.png", headers={"Authorization": keys["bank"]}).status_code == 403
    assert api.get("/api/v1/enterprises/91110000600037341L/code.png",
                   headers={"Authorization": keys["enterprise"]}).json()["code"] == "not_your_enterprise"
    assert api.get("/api/v1/enterprises/91110000600037341L/code.png",
                   headers={"Authorization": keys["registrar"]}).json()["code"] == "enterprise_not_found"
    assert api.get(f"/api/v1/enterprises/{USCC}/code.gif", headers={"Authorization": keys["registrar"]}).status_code == 422
    assert api.post("/api/v1/verify/code", json={"code": "x"}, headers={"Authorization": "Bearer qk_x_y"}).status_code == 401


def test_next_scan_sees_status_changes(api, keys, registered):
    url = static_url(api, keys)
    h = {"Authorization": keys["registrar"]}
    api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "abnormal"}, headers=h)
    body = api.post("/api/v1/verify/code", json={"code": url}).json()
    assert body["status"] == "VALID" and reasons(body)["status"] == ("VALID", "enterprise_abnormal")
    api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "deregistered"}, headers=h)
    body = api.post("/api/v1/verify/code", json={"code": url}).json()
    assert body["status"] == "INVALID" and reasons(body)["status"] == ("INVALID", "enterprise_deregistered")


def _offline(api, runtime):
    return OfflineSource(KeySet.from_json(api.get("/api/v1/codes/keyset").json()), runtime.chain.governor.address)


def test_rotating_the_static_key_three_times_keeps_every_printed_code_valid(api, keys, registered, runtime):
    printed = [static_url(api, keys)]
    status = api.get("/api/v1/codes/static/status", headers={"Authorization": keys["enterprise"]}).json()
    assert status == {"uscc": USCC, "replace_code": False, "active_kid": token.parse(printed[0]).kid}
    governor = {"Authorization": keys["governor"]}
    for _ in range(3):
        r = api.post("/api/v1/codes/keys/rotate", headers=governor)
        assert r.status_code == 200 and r.json()["status"] == "active"
        printed.append(static_url(api, keys))
    assert len(set(printed)) == 4  # four keys, four different signatures on the same company
    offline = _offline(api, runtime)
    for n, url in enumerate(printed):
        body = api.post("/api/v1/verify/code", json={"code": url}).json()
        assert body["status"] == "VALID", (n, body)
        if n < 3:  # signed by a key retired since: still valid, and the verdict says so
            assert reasons(body)["key"] == ("VALID", "key_retired") and body["warnings"] == ["key_retired"]
            assert reasons(body)["issuer"] == ("VALID", "registrar_on_chain")
        else:
            assert reasons(body)["key"] == ("VALID", "key_active") and body["warnings"] == []
        # What an operator reads of the issuer: held the role then, or holds it now.
        assert {c["name"]: c["message"] for c in body["checks"]}["issuer"] == (
            "the signer held the registrar role on chain (retired since)" if n < 3
            else "the signer holds the registrar role on chain")
        assert verify(url, offline).facts["genuine"] == Status.VALID  # an inspector's device, offline
    page = api.get(printed[0][printed[0].index("/V/"):], headers={"host": "127.0.0.1:8000"})
    assert "真实有效" in page.text and "此前签发的企业码和存证仍然有效" in page.text  # the warning, in words
    assert {k["status"] for k in api.get("/api/v1/codes/keyset").json()["keys"]} == {"active", "retired"}
    assert api.post("/api/v1/codes/keys/rotate", headers={"Authorization": keys["registrar"]}).status_code == 403


def test_a_compromised_static_key_invalidates_its_codes_and_reissue_renders_new_ones(api, keys, registered, runtime,
                                                                                     tmp_path, monkeypatch):
    from click.testing import CliRunner

    from materials_api.cli import main as cli

    old = static_url(api, keys)
    kid = token.parse(old).kid
    governor = {"Authorization": keys["governor"]}
    # Bad input: a key id that does not exist, out of range, or a caller who is not the governor.
    assert api.post("/api/v1/codes/keys/99/compromise", headers=governor).json()["code"] == "unknown_key"
    assert api.post("/api/v1/codes/keys/0/compromise", headers=governor).status_code == 422
    assert api.post(f"/api/v1/codes/keys/{kid}/compromise", headers={"Authorization": keys["registrar"]}).status_code == 403
    assert api.post("/api/v1/verify/code", json={"code": old}).json()["status"] == "VALID"  # nothing changed

    r = api.post(f"/api/v1/codes/keys/{kid}/compromise", headers=governor)
    assert r.status_code == 200 and r.json()["status"] == "compromised"
    assert api.post(f"/api/v1/codes/keys/{kid}/compromise", headers=governor).status_code == 200  # idempotent
    body = api.post("/api/v1/verify/code", json={"code": old}).json()
    assert body["status"] == "INVALID"
    assert reasons(body)["key"] == ("INVALID", "key_compromised")
    assert reasons(body)["issuer"] == ("INVALID", "key_compromised")  # the chain says so too
    assert verify(old, _offline(api, runtime)).status == Status.INVALID
    assert runtime.chain.ledger.role_term("REGISTRAR_ROLE", api.app.state.codes.key(kid).address).compromised
    affected = api.get(f"/api/v1/codes/keys/{kid}/enterprises", headers=governor).json()
    assert affected == [{"uscc": USCC, "name": NAME}]
    portal = api.get("/api/v1/codes/static/status", headers={"Authorization": keys["enterprise"]}).json()
    assert portal["replace_code"] is True and portal["active_kid"] != kid  # the portal shows 请更换企业码

    # `qiyema code reissue` renders the new codes in one batch, against the same service home.
    for name, value in runtime.settings.model_dump().items():
        if value is not None and name in ("home", "database_url"):
            monkeypatch.setenv(f"QIYEMA_{name.upper()}", str(value))
    monkeypatch.setattr("materials_api.cli.common.opened", _opened_on(runtime))
    monkeypatch.setattr("materials_api.cli.codes.opened", _opened_on(runtime))
    out = tmp_path / "reissued"
    result = CliRunner().invoke(cli, ["code", "reissue", "--kid", str(kid), "-o", str(out), "--format", "txt"])
    assert result.exit_code == 0, result.output
    new = (out / f"{USCC}.txt").read_text().strip()
    assert new != old and token.parse(new).kid != kid
    assert api.post("/api/v1/verify/code", json={"code": new}).json()["status"] == "VALID"
    assert "old_kid" in (out / "reissued.csv").read_text()
    # A key that is not compromised has nothing to reissue; an unknown one is a clear error.
    result = CliRunner().invoke(cli, ["code", "reissue", "--kid", str(token.parse(new).kid), "-o", str(out)])
    assert result.exit_code == 1 and "not compromised" in result.output
    result = CliRunner().invoke(cli, ["code", "reissue", "--kid", "77", "-o", str(out)])
    assert result.exit_code == 1 and "unknown_key" in result.output


def _opened_on(runtime):
    from contextlib import contextmanager

    from materials_api.root import Services

    @contextmanager
    def opened(start_node: bool = True):
        yield runtime, Services.build(runtime)

    return opened


def test_dynamic_code_with_scope_single_use(api, keys, registered):
    scope = {"verifier_org": "工商银行杨浦支行", "material_types": ["lease_contract"], "purpose": "开立对公账户"}
    r = api.post("/api/v1/codes/dynamic", json={"single_use": True, "scope": scope, "ttl_seconds": 120},
                 headers={"Authorization": keys["enterprise"]})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["expires_at"] - issued["issued_at"] == 120
    first = api.post("/api/v1/verify/code", json={"code": issued["code"]}, headers={"Authorization": keys["bank"]}).json()
    assert first["status"] == "VALID" and first["scope"]["verifier_org"] == "工商银行杨浦支行"
    assert reasons(first)["signature"] == ("VALID", "signed") and reasons(first)["replay"] == ("VALID", "fresh")
    again = api.post("/api/v1/verify/code", json={"code": issued["code"]}).json()
    assert again["status"] == "INVALID" and reasons(again)["replay"] == ("INVALID", "replayed")


def test_dynamic_code_expiry_tampering_and_key_rotation(api, keys, registered, runtime):
    issued = api.post("/api/v1/codes/dynamic", json={}, headers={"Authorization": keys["enterprise"]}).json()
    service = api.app.state.codes
    parsed = token.parse(issued["code"])
    late = verify(issued["code"], OnlineSource(service), now=parsed.expires_at + 1)
    assert late.status == Status.INVALID and "expired" in [c.reason for c in late.checks]
    # A forged code: right shape, signed by some other key.
    forged = token.dynamic_code(service.origin, USCC, parsed.issued_at, parsed.expires_at, parsed.nonce,
                                stranger_code_signer())
    body = api.post("/api/v1/verify/code", json={"code": forged}).json()
    assert body["status"] == "INVALID" and reasons(body)["signature"][1] == "bad_signature"
    # Rotating the enterprise's key turns every code it signed INVALID.
    with runtime.sessions() as s:
        from sqlalchemy import select

        from materials_api.registry.models import Enterprise

        enterprise = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC))
    service.enterprise_signer(enterprise, rotate=True)
    body = api.post("/api/v1/verify/code", json={"code": issued["code"]}).json()
    assert body["status"] == "INVALID" and reasons(body)["signature"][1] == "bad_signature"


def test_dynamic_code_refusals(api, keys, registered):
    assert api.post("/api/v1/codes/dynamic", json={}, headers={"Authorization": keys["bank"]}).status_code == 403
    r = api.post("/api/v1/codes/dynamic", json={"ttl_seconds": 99999}, headers={"Authorization": keys["enterprise"]})
    assert r.status_code == 422
    api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "revoked"}, headers={"Authorization": keys["registrar"]})
    r = api.post("/api/v1/codes/dynamic", json={}, headers={"Authorization": keys["enterprise"]})
    assert r.status_code == 409 and r.json()["code"] == "enterprise_revoked"


def test_chain_outage_is_error_never_invalid(api, keys, registered, runtime):
    url = static_url(api, keys)
    client = runtime.chain.client
    provider, retries = client.w3.provider, client.retries
    client.w3.provider = Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 0.2})
    client.retries = 0
    runtime.chain.ledger._roles.clear()
    try:
        body = api.post("/api/v1/verify/code", json={"code": url}).json()
    finally:
        client.w3.provider, client.retries = provider, retries
    assert body["status"] == "ERROR"
    assert reasons(body)["issuer"][0] == "ERROR" and reasons(body)["signature"] == ("VALID", "signed")


def test_keyset_serves_offline_verification(api, keys, registered, runtime):
    url = static_url(api, keys)
    ks = api.get("/api/v1/codes/keyset").json()
    source = OfflineSource(KeySet.from_json(ks), runtime.chain.governor.address)
    verdict = verify(url, source)
    assert verdict.facts["genuine"] == Status.VALID and verdict.status == Status.SKIPPED  # standing: online only
    assert verdict.check("issuer").reason == "registrar_in_keyset"


def test_verification_page_for_genuine_and_copied_codes(api, keys, registered):
    url = static_url(api, keys)
    path = url[url.index("/V/"):]
    page = api.get(path, headers={"host": "127.0.0.1:8000"})
    assert page.status_code == 200 and "真实有效" in page.text and NAME in page.text
    # A phone's browser or a chat app may lower-case the path: the same page, the same verdict.
    lower = api.get("/v/" + path[3:], headers={"host": "127.0.0.1:8000"})
    assert lower.status_code == 200 and "真实有效" in lower.text and NAME in lower.text
    copied = api.get(path, headers={"host": "qiyema-gov.example.com"})
    assert "无效或伪造" in copied.text and NAME not in copied.text


def test_codes_are_made_in_batches_each_with_its_reason_and_each_signing_recorded_once(api, keys, registered, runtime):
    # What `qiyema code render-batch` runs per 1,000 companies: one look-up, one key, one write.
    import random

    from sqlalchemy import func, select

    from codes.uscc import UsccError, generate
    from materials_api.codes.models import StaticCodeIssue
    from materials_api.registry.service import EnterpriseError

    service = api.app.state.codes
    unknown = generate(random.Random(5))
    results = service.static_codes([USCC, "91350100M000100Y4X", unknown, USCC.lower()])
    assert isinstance(results[1], UsccError)
    assert isinstance(results[2], EnterpriseError) and results[2].code == "enterprise_not_found"
    (first, enterprise), (again, _) = results[0], results[3]
    # The same code twice (SM2 signs with a random k: the same signed message, then).
    assert token.parse(first).message == token.parse(again).message and enterprise.uscc == USCC
    assert token.parse(first).kid == service.active_key().kid
    assert api.post("/api/v1/verify/code", json={"code": first}).json()["status"] == "VALID"
    service.static_codes([USCC])
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(StaticCodeIssue).where(
            StaticCodeIssue.enterprise_id == enterprise.id)) == 1


def test_a_code_and_the_grant_it_carries_end_when_the_service_clock_passes_their_end(api, keys, registered, runtime):
    """Through the service as a bank uses it, with time moved rather than waited for: a code
    lives its `ttl_seconds`, and the consent it carries lives no longer."""
    scope = {"verifier_org": "工商银行杨浦支行", "material_types": ["lease_contract"], "purpose": "开立对公账户"}
    issued = api.post("/api/v1/codes/dynamic", json={"scope": scope, "ttl_seconds": 60},
                      headers={"Authorization": keys["enterprise"]}).json()
    bank = {"Authorization": keys["bank"]}
    assert api.post("/api/v1/verify/code", json={"code": issued["code"]}, headers=bank).json()["status"] == "VALID"
    grants = api.get("/api/v1/consents", headers={"Authorization": keys["enterprise"]}).json()
    assert [g["active"] for g in grants] == [True]
    runtime.clock.advance(61)
    late = api.post("/api/v1/verify/code", json={"code": issued["code"]}, headers=bank).json()
    assert late["status"] == "INVALID" and reasons(late)["expiry"] == ("INVALID", "expired")
    grants = api.get("/api/v1/consents", headers={"Authorization": keys["enterprise"]}).json()
    assert [g["active"] for g in grants] == [False]
