"""Attack: one authority undoes another's records. Another district's food authority holds the
same category (permit.food) but did not issue 杨浦's permit; inspector B's bureau did not write
inspector A's inspection. Each refusal has its reason code, changes nothing and is written in the
enterprise's access log; the issuing organisation itself still can, with its own chain account."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from tests.attacks.conftest import USCC, keys_for
from tests.conftest import grant_writers

pytestmark = pytest.mark.anvil


def _key(runtime, org, role, scope=None):
    with runtime.sessions.begin() as s:
        _, plain = create_key(s, org, role, scope)
    grant_writers(runtime)  # the background worker's step for a new writing organisation
    return {"Authorization": f"Bearer {plain}"}


def _registered(api, runtime):
    keys = keys_for(runtime)
    r = api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "杨浦示例餐饮有限公司"}, headers=keys["registrar"])
    assert r.status_code == 201, r.text
    return keys


def _denials(runtime, action):
    from materials_api.bank.models import AccessLogEntry

    with runtime.sessions() as s:
        return [(e.organisation, e.outcome) for e in s.scalars(select(AccessLogEntry).where(
            AccessLogEntry.action == action, AccessLogEntry.outcome == "denied"))]


def test_another_food_authority_cannot_revoke_a_permit_it_did_not_issue(service):
    api, runtime = service
    keys = _registered(api, runtime)
    yangpu = _key(runtime, "杨浦区市场监督管理局", Role.ISSUER, "permit.food")
    other = _key(runtime, "外区市场监督管理局", Role.ISSUER, "permit.food")
    r = api.post("/api/v1/records", json={"uscc": USCC, "kind": "food_business", "number": "JY13101100000001",
                                          "data": {"items": "热食类食品制售"}}, headers=yangpu)
    assert r.status_code == 201, r.text
    record = r.json()["id"]
    r = api.post(f"/api/v1/records/{record}/status", json={"status": "revoked", "reason": "恶意吊销"}, headers=other)
    assert r.status_code == 403 and r.json()["code"] == "not_issuing_organisation", r.text
    assert ("外区市场监督管理局", "denied") in _denials(runtime, "record_status")
    log = api.get("/api/v1/access-log", headers=keys["enterprise"]).json()
    assert any(e["organisation"] == "外区市场监督管理局" and e["outcome"] == "denied" for e in
               (log["entries"] if isinstance(log, dict) else log))
    # On chain too: the other district's own account (it holds permit.food) is refused by the
    # contract, which binds a record's status to its batch's issuer.
    from chain.errors import TransactionReverted
    from chain.ledger import RecordStatus
    from materials_api.identity.api_keys import authenticate
    from materials_api.records.models import Record

    api.app.state.records.reconcile()
    with runtime.sessions() as s:
        row = s.get(Record, record)
        intruder = authenticate(s, other["Authorization"].removeprefix("Bearer "))
    assert row.chain_state == "confirmed"
    account = runtime.chain.keys.account(f"org-{intruder.organisation_id}")
    assert runtime.chain.ledger.has_role("issuer:permit.food", account.address)
    with pytest.raises(TransactionReverted) as refused:
        runtime.chain.client.wait(runtime.chain.ledger.send_set_record_status(
            account, bytes(row.root), row.leaf_index, RecordStatus.REVOKED, "hostile"))
    assert refused.value.error == "NotBatchIssuer"
    # Nothing changed, on the record or on chain; the issuer itself still can.
    with runtime.sessions() as s:
        assert s.get(Record, record).status == "valid"
    assert runtime.chain.ledger.record_of(bytes(row.root), row.leaf_index).status == RecordStatus.VALID
    r = api.post(f"/api/v1/records/{record}/status", json={"status": "suspended", "reason": "停业整顿"}, headers=yangpu)
    assert r.status_code == 200 and r.json()["status"] == "suspended", r.text


def test_an_inspector_cannot_change_another_bureaus_inspection(service):
    api, runtime = service
    _registered(api, runtime)
    a = _key(runtime, "杨浦区执法大队", Role.INSPECTOR)
    b = _key(runtime, "外区执法大队", Role.INSPECTOR)
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 40)).save(photo, "JPEG")
    r = api.post("/api/v1/inspections", headers=a, files={"file": ("现场.jpg", photo.getvalue(), "image/jpeg")},
                 data={"uscc": USCC, "result": "passed", "findings": "证照齐全，现场整洁"})
    assert r.status_code == 201, r.text
    inspection = r.json()["id"]
    r = api.post(f"/api/v1/records/{inspection}/status", json={"status": "revoked", "reason": "x"}, headers=b)
    assert r.status_code in (403, 404) and r.json()["code"] in ("not_issuing_organisation", "record_not_found"), r.text
    assert ("外区执法大队", "denied") in _denials(runtime, "record_status")
