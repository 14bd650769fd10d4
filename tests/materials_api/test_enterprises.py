"""Registering enterprises through the API: database and chain, and every refusal."""

import time

import pytest
from sqlalchemy import func, select

from chain.ledger import EnterpriseStatus as ChainStatus
from codes.uscc import chain_key
from materials_api.registry.models import Enterprise, EnterpriseEvent

USCC = "91350100M000100Y43"
BODY = {"uscc": USCC, "name": "福建示例科技有限公司"}


def count(runtime):
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Enterprise))


def test_register_writes_database_and_chain(api, keys, runtime):
    r = api.post("/api/v1/enterprises", json=BODY, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["uscc"] == USCC and body["name"] == BODY["name"] and body["status"] == "active"
    chain = body["chain"]
    assert chain["state"] == "confirmed" and chain["tx_hash"].startswith("0x") and len(chain["tx_hash"]) == 66
    receipt = runtime.chain.client.w3.eth.get_transaction_receipt(chain["tx_hash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == chain["block_number"]
    assert runtime.chain.ledger.enterprise(chain_key(USCC)).status == ChainStatus.ACTIVE
    got = api.get(f"/api/v1/enterprises/{USCC}", headers={"Authorization": keys["bank"]})
    assert got.status_code == 200 and got.json()["chain"]["tx_hash"] == chain["tx_hash"]


@pytest.mark.parametrize("uscc, code", [
    ("91350100M000100Y44", "uscc_check_character"),
    ("9135", "uscc_length"),
    ("91350100M0001O0Y43", "uscc_illegal_character"),
])
def test_malformed_uscc_is_422_with_reason_and_changes_nothing(api, keys, runtime, uscc, code):
    block = runtime.chain.client.block_number()
    r = api.post("/api/v1/enterprises", json={"uscc": uscc, "name": "x"}, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 422 and r.json()["code"] == code and r.json()["message"]
    assert count(runtime) == 0 and runtime.chain.client.block_number() == block


def test_missing_fields_are_422(api, keys):
    r = api.post("/api/v1/enterprises", json={"uscc": USCC}, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request" and "name" in r.json()["message"]


def test_duplicate_is_409_and_changes_nothing(api, keys, runtime):
    api.post("/api/v1/enterprises", json=BODY, headers={"Authorization": keys["registrar"]})
    block = runtime.chain.client.block_number()
    r = api.post("/api/v1/enterprises", json={**BODY, "name": "另一家"}, headers={"Authorization": keys["registrar"]})
    assert r.status_code == 409 and r.json()["code"] == "enterprise_exists"
    assert count(runtime) == 1 and runtime.chain.client.block_number() == block
    assert api.get(f"/api/v1/enterprises/{USCC}", headers={"Authorization": keys["registrar"]}).json()["name"] == BODY["name"]


def test_unknown_company_is_404(api, keys):
    r = api.get("/api/v1/enterprises/91110000600037341L", headers={"Authorization": keys["registrar"]})
    assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"


@pytest.mark.parametrize("header, status, code", [
    (None, 401, "auth_missing"),
    ("Bearer qk_nothere_secret", 401, "auth_invalid"),
    ("Bearer not-a-key", 401, "auth_invalid"),
    ("revoked", 401, "auth_invalid"),
    ("bank", 403, "role_forbidden"),
    ("enterprise", 403, "role_forbidden"),
    ("governor", 403, "role_forbidden"),
    ("public", 403, "role_forbidden"),
])
def test_missing_wrong_or_unauthorised_key_is_refused_and_changes_nothing(api, keys, runtime, header, status, code):
    headers = {} if header is None else {"Authorization": keys.get(header, header)}
    block = runtime.chain.client.block_number()
    r = api.post("/api/v1/enterprises", json=BODY, headers=headers)
    assert r.status_code == status and r.json()["code"] == code
    assert count(runtime) == 0 and runtime.chain.client.block_number() == block


def test_status_change_goes_to_chain_with_an_audit_event(api, keys, runtime):
    api.post("/api/v1/enterprises", json=BODY, headers={"Authorization": keys["registrar"]})
    r = api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "abnormal", "reason": "未按时年报"},
                 headers={"Authorization": keys["registrar"]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "abnormal" and r.json()["chain"]["status"] == "abnormal"
    assert runtime.chain.ledger.enterprise(chain_key(USCC)).status == ChainStatus.ABNORMAL
    with runtime.sessions() as s:
        kinds = [(e.kind, e.to_status, e.reason) for e in s.scalars(select(EnterpriseEvent).order_by(EnterpriseEvent.id))]
    assert kinds == [("registered", "active", None), ("status_changed", "abnormal", "未按时年报")]


def test_status_change_refusals(api, keys, runtime):
    h = {"Authorization": keys["registrar"]}
    assert api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "abnormal"}, headers=h).json()["code"] == "enterprise_not_found"
    api.post("/api/v1/enterprises", json=BODY, headers=h)
    r = api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "active"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "status_unchanged"
    r = api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "closed"}, headers=h)
    assert r.status_code == 422
    r = api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "abnormal"}, headers={"Authorization": keys["inspector"]})
    assert r.status_code == 403
    assert api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "deregistered"}, headers=h).status_code == 200
    r = api.post(f"/api/v1/enterprises/{USCC}/status", json={"status": "active"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "enterprise_deregistered"
    assert runtime.chain.ledger.enterprise(chain_key(USCC)).status == ChainStatus.DEREGISTERED


def test_chain_outage_stores_then_reconciles(api, keys, runtime):
    """With the chain unreachable the registration is kept (202, pending); once the chain is
    back the reconciler registers it, once."""
    client = runtime.chain.client
    provider = client.w3.provider
    from web3 import Web3

    client.w3.provider = Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 0.2})
    client.retries = 0
    try:
        r = api.post("/api/v1/enterprises", json=BODY, headers={"Authorization": keys["registrar"]})
    finally:
        client.w3.provider = provider
    assert r.status_code == 202 and r.json()["chain"]["state"] == "pending"
    assert runtime.chain.ledger.enterprise(chain_key(USCC)).status == ChainStatus.NONE
    service = api.app.state.enterprises
    assert service.reconcile().registered == 1
    assert service.reconcile().registered == 0
    assert runtime.chain.ledger.enterprise_count() == 1
    body = api.get(f"/api/v1/enterprises/{USCC}", headers={"Authorization": keys["registrar"]}).json()
    assert body["chain"]["state"] == "confirmed" and body["chain"]["tx_hash"]


def test_list_pages_through_enterprises(api, keys):
    h = {"Authorization": keys["registrar"]}
    for uscc in ("91350100M000100Y43", "91110000600037341L", "91440300708461136T"):
        api.post("/api/v1/enterprises", json={"uscc": uscc, "name": "公司" + uscc[-3:]}, headers=h)
    first = api.get("/api/v1/enterprises?limit=2", headers=h).json()
    assert len(first["items"]) == 2 and first["next_after"]
    rest = api.get(f"/api/v1/enterprises?limit=2&after={first['next_after']}", headers=h).json()
    assert len(rest["items"]) == 1 and rest["next_after"] is None
    assert api.get("/api/v1/enterprises", headers={"Authorization": keys["bank"]}).status_code == 403


def test_enterprises_lost_by_a_reset_chain_are_registered_again(api, keys, runtime, settings):
    """A chain that lost its state (reset, new deployment) is brought back in line by the
    reconciler's first pass: every confirmed enterprise is queued again and sent once."""
    from chain.client import ChainClient
    from materials_api.platform.runtime import Runtime
    from materials_api.registry.service import EnterpriseService

    other = {"uscc": "91110108MA01ABCD1E", "name": "北京示例有限公司"}
    for body in (BODY, other):
        assert api.post("/api/v1/enterprises", json=body, headers={"Authorization": keys["registrar"]}).status_code == 201
    assert EnterpriseService(runtime.sessions, runtime.chain).requeue_lost() == 0  # nothing lost

    # A new in-process chain's genesis carries the wall-clock second: start it in a later second than
    # the first, so it is told apart from it (as a real reset is) and keeps nonces of its own.
    time.sleep(1.05 - time.time() % 1)
    fresh = ChainClient.in_process(poll_interval=0.01, timeout=10)  # a chain that knows nothing
    again = Runtime.open(settings, client=fresh)
    try:
        service = EnterpriseService(again.sessions, again.chain)
        assert service.requeue_lost() == 2
        assert service.reconcile().registered == 2
        assert {again.chain.ledger.enterprise(chain_key(b["uscc"])).status for b in (BODY, other)} == {ChainStatus.ACTIVE}
        assert service.requeue_lost() == 0
        assert again.chain.ledger.enterprise_count() == 2
    finally:
        again.close()
