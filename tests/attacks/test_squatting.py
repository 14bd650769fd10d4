"""Attack: squat a root. Notaries' batches and issuers' record batches share one root namespace,
so any issuer (a bank's receipt account, say) that sees the notary's transaction in the mempool
can anchor the same root first; the notary's transaction then reverts `RootAlreadyAnchored`.
Counted as delivered, the materials would verify INVALID `not_notary` for good. The service
checks who anchored it and re-batches its materials with fresh salts under a new root."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from materials_api.bank.anchoring import SQUATTED
from materials_api.bank.models import AnchorBatch
from materials_api.identity.api_keys import create_key
from materials_api.identity.models import Role
from materials_api.records.models import Record
from tests.attacks.conftest import USCC, keys_for
from tests.conftest import grant_writers

pytestmark = pytest.mark.anvil
LEASE = b"%PDF-1.7\n" + "场地租赁合同 ".encode() * 300


def test_a_squatted_root_is_noticed_and_its_materials_anchored_anew(service):
    api, runtime = service
    keys = keys_for(runtime)
    with runtime.sessions.begin() as s:
        bank_key, _ = create_key(s, "某银行", Role.BANK)
    grant_writers(runtime)  # the bank's own account holds the bank.receipt issuer role
    bank_account = runtime.chain.keys.account(f"org-{bank_key.organisation_id}")
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "示例"}, headers=keys["registrar"]).status_code == 201
    r = api.post("/api/v1/materials", headers=keys["enterprise"], files={"file": ("租赁合同.pdf", LEASE)},
                 data={"folder": "lease_contract"})
    material = r.json()["id"]
    assert api.post(f"/api/v1/materials/{material}/confirm", headers=keys["enterprise"]).status_code == 200
    anchorer = api.app.state.anchorer
    batch = anchorer._build_batch(force=True)  # written ahead: the root the notary is about to send
    # The bank sees it in the mempool and anchors the same root first, as a batch of its receipts.
    runtime.chain.client.wait(runtime.chain.ledger.send_issue_records(bank_account, "bank.receipt", [batch.root], [1]))
    anchorer.run_once(force=True)
    with runtime.sessions() as s:
        assert s.get(AnchorBatch, batch.id).state == SQUATTED
        fresh = s.scalars(select(AnchorBatch).where(AnchorBatch.id != batch.id)).one()
    assert fresh.state == "confirmed" and fresh.root != batch.root
    bundle = api.get(f"/api/v1/materials/{material}/proof", headers=keys["enterprise"]).json()
    assert bundle["root"] == "0x" + fresh.root.hex()
    body = api.post("/api/v1/verify/material", json={"sha256": hashlib.sha256(LEASE).hexdigest(),
                                                      "bundle": bundle}).json()
    assert body["status"] == "VALID", body


def test_a_squatted_record_batch_is_sealed_anew_and_issued_by_its_own_organisation(service):
    """Another issuer (here a notary-less bank account of another category) front-runs an
    authority's batch of records: the service notices the anchorer is not the authority's account."""
    api, runtime = service
    keys = keys_for(runtime)
    with runtime.sessions.begin() as s:
        food_key, food = create_key(s, "杨浦区市场监管局", Role.ISSUER, "permit.food")
        bank_key, _ = create_key(s, "某银行", Role.BANK)
    grant_writers(runtime)
    bank_account = runtime.chain.keys.account(f"org-{bank_key.organisation_id}")
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "示例"}, headers=keys["registrar"]).status_code == 201
    records = api.app.state.records

    # The authority's system feeds a change: written ahead (its root sealed), witnessed later by
    # the records loop; before that, the bank anchors the same root as a batch of its receipts.
    r = api.post("/api/v1/records/batch", headers={"Authorization": f"Bearer {food}"}, json={"changes": [
        {"uscc": USCC, "kind": "food_business", "source_id": "FP-1", "source_version": 1, "number": "JY1",
         "data": {"items": "热食"}}]})
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text
    with runtime.sessions() as s:
        record_id = s.scalars(select(Record.id)).one()
    with runtime.sessions() as s:
        root = bytes(s.get(Record, record_id).root)
    runtime.chain.client.wait(runtime.chain.ledger.send_issue_records(bank_account, "bank.receipt", [root], [1]))
    for _ in range(3):
        records.reconcile()
    with runtime.sessions() as s:
        row = s.get(Record, record_id)
        assert row.chain_state == "confirmed" and bytes(row.root) != root
    assert runtime.chain.ledger.anchor_of(bytes(row.root)).anchorer == \
        runtime.chain.keys.account(f"org-{food_key.organisation_id}").address
    from chain.material_verify import verify_record
    from chain.proof import ProofBundle

    bundle = ProofBundle.from_json(api.get(f"/api/v1/records/{row.id}/proof").json())
    verdict = verify_record(bundle, content=None, client=runtime.chain.client, trust=runtime.chain.trust)
    assert verdict.check("anchor").status.value == "VALID" and verdict.check("issuer").reason == "category_issuer"
