"""Attack: use the gap between the database (the record) and the chain (the witness). A material
withdrawn in the bank is INVALID at once on every verification path, before its revocation
lands on chain; a reuse is judged on the bytes the store holds now, not on the hash kept at upload."""

from __future__ import annotations

import hashlib

import pytest

from tests.attacks.conftest import deposit, keys_for

pytestmark = pytest.mark.anvil
LEASE = b"%PDF-1.7\n" + "房屋租赁合同 lease ".encode() * 400 + b"\n%%EOF\n"


def test_a_withdrawn_material_is_invalid_at_once_before_the_chain_hears_of_it(service):
    api, runtime = service
    keys = keys_for(runtime)
    got = deposit(api, runtime, keys, LEASE)
    body = {"sha256": hashlib.sha256(LEASE).hexdigest(), "bundle": got["bundle"]}
    assert api.post("/api/v1/verify/material", json=body).json()["status"] == "VALID"
    r = api.post(f"/api/v1/materials/{got['id']}/withdraw", headers=keys["enterprise"])
    assert r.status_code == 200, r.text
    # No anchoring pass has run: the chain still holds the leaf as current.
    single = api.post("/api/v1/verify/material", json=body).json()
    assert single["status"] == "INVALID"
    assert {c["name"]: c["reason"] for c in single["checks"]}["status"] == "withdrawn"
    batch = api.post("/api/v1/verify/materials", json={"items": [body]}).json()
    assert batch["counts"] == {"INVALID": 1} and batch["verdicts"][0]["checks"][-1]["reason"] == "withdrawn"


def test_a_reuse_hashes_the_stored_bytes(service):
    api, runtime = service
    keys = keys_for(runtime)
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role

    with runtime.sessions.begin() as s:
        _, clerk = create_key(s, "行政服务中心", Role.CLERK)
    got = deposit(api, runtime, keys, LEASE)
    r = api.post("/api/v1/applications", json={"service_item": "talent_subsidy"}, headers=keys["enterprise"])
    assert r.status_code == 201, r.text
    application = r.json()["id"]
    # Someone with the object store's credentials swaps the stored bytes (the hash column stays).
    store = runtime.storage
    path = next(p for p in store.inner.root.rglob(hashlib.sha256(LEASE).hexdigest()))  # the bytes as stored (sealed)
    path.chmod(0o644)
    path.write_bytes(LEASE.replace(b"lease", b"LEASE"))
    r = api.post(f"/api/v1/applications/{application}/materials/{got['id']}/verify",
                 headers={"Authorization": f"Bearer {clerk}"})
    assert r.status_code == 200, r.text
    verdict = r.json()["verdict"]
    assert verdict["status"] == "INVALID"
    assert {c["name"]: c["reason"] for c in verdict["checks"]}["integrity"] == "hash_mismatch"
