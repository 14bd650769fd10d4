"""A stolen notary key, declared compromised for everything it ever anchored: the genuine
materials it anchored must not be lost for good. `qiyema keys compromise` says what it
invalidates; `qiyema keys rewitness` witnesses again, under the current key, every material whose
bytes the service still holds unaltered; old bundles stay INVALID `key_compromised` and name
their replacement; the enterprise's page says whose proofs were replaced."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tests.attacks.conftest import deposit_batch, keys_for

pytestmark = pytest.mark.anvil


def _verify(api, content, bundle):
    body = api.post("/api/v1/verify/material", json={"sha256": hashlib.sha256(content).hexdigest(),
                                                      "bundle": bundle}).json()
    return body, {c["name"]: (c["status"], c["reason"]) for c in body["checks"]}


def test_a_compromised_notarys_genuine_materials_are_witnessed_again(service):
    api, runtime = service
    keys = keys_for(runtime)
    contents = [b"%PDF-1.7\n" + f"营业执照副本 {i} ".encode() * 200 for i in range(3)]
    got = deposit_batch(api, keys, contents)
    old_notary = runtime.chain.notary.address
    # One material's bytes are altered in the store meanwhile: the service cannot vouch for it again.
    store_path = next(runtime.storage.inner.root.rglob(hashlib.sha256(contents[2]).hexdigest()))
    store_path.chmod(0o644)
    store_path.write_bytes(contents[2] + b"tampered")
    env = {**os.environ, "QIYEMA_HOME": str(runtime.settings.home), "QIYEMA_CHAIN_RPC_URL": runtime.settings.chain_rpc_url,
           "QIYEMA_DATABASE_URL": runtime.settings.db_url}
    cli = [sys.executable, "-m", "materials_api.cli", "keys"]
    out = subprocess.run(cli + ["compromise", "--role", "notary", "--from-block", "all", "--yes"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "it invalidates 3 material(s) in 1 batch(es)" in out.stdout
    runtime.chain.keys.forget()  # the running service reads the new active key (as it does every few seconds)
    assert runtime.chain.notary.address != old_notary
    body, checks = _verify(api, contents[0], got[0]["bundle"])
    assert body["status"] == "INVALID" and checks["issuer"] == ("INVALID", "key_compromised")
    # A key never declared compromised is refused (the current notary's).
    refused = subprocess.run(cli + ["rewitness", "--role", "notary", "--address", runtime.chain.notary.address,
                                    "--from-block", "all"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "not_compromised" in refused.stderr
    out = subprocess.run(cli + ["rewitness", "--role", "notary", "--address", old_notary, "--from-block", "all"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 material(s) queued" in out.stdout and "1 left out" in out.stdout
    api.app.state.anchorer.run_once(force=True)  # the anchoring loop, under the current notary
    for i in (0, 1):
        material = api.get(f"/api/v1/materials/{got[i]['id']}", headers=keys["enterprise"]).json()
        assert material["state"] == "anchored" and material["proof_replaced_at"], material
        fresh = api.get(f"/api/v1/materials/{got[i]['id']}/proof", headers=keys["enterprise"]).json()
        body, checks = _verify(api, contents[i], fresh)
        assert body["status"] == "VALID" and checks["issuer"] == ("VALID", "notary"), body
        # The old bundle stays INVALID, and names where the new one is.
        body, checks = _verify(api, contents[i], got[i]["bundle"])
        assert body["status"] == "INVALID" and checks["issuer"] == ("INVALID", "key_compromised")
        assert body["replaced_by"] == {"material_id": got[i]["id"], "proof": f"/api/v1/materials/{got[i]['id']}/proof"}
    tampered = api.get(f"/api/v1/materials/{got[2]['id']}", headers=keys["enterprise"]).json()
    assert tampered["proof_replaced_at"] is None and tampered["state"] == "anchored"
    body, _ = _verify(api, contents[2], got[2]["bundle"])
    assert body["status"] == "INVALID" and "replaced_by" not in body


def test_a_compromised_authoritys_records_are_issued_again_from_the_database(service):
    from chain.material_verify import verify_record
    from chain.proof import ProofBundle
    from materials_api.identity.api_keys import create_key
    from materials_api.identity.models import Role
    from tests.attacks.conftest import USCC
    from tests.conftest import grant_writers

    api, runtime = service
    keys = keys_for(runtime)
    assert api.post("/api/v1/enterprises", json={"uscc": USCC, "name": "示例"}, headers=keys["registrar"]).status_code == 201
    with runtime.sessions.begin() as s:
        food_key, food = create_key(s, "杨浦区市场监管局", Role.ISSUER, "permit.food")
    grant_writers(runtime)
    food = {"Authorization": f"Bearer {food}"}
    ids = []
    for n in range(2):
        r = api.post("/api/v1/records", headers=food, json={"uscc": USCC, "kind": "food_business", "number": f"JY{n}",
                                                             "data": {"items": "热食"}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    org = food_key.organisation_id

    def content(n):
        return {"uscc": USCC, "kind": "food_business", "number": f"JY{n}", "data": {"items": "热食"},
                "valid_from": None, "valid_until": None}

    def verdict(record_id, bundle=None):
        bundle = ProofBundle.from_json(bundle or api.get(f"/api/v1/records/{record_id}/proof").json())
        return verify_record(bundle, content=content(ids.index(record_id)), client=runtime.chain.client,
                             trust=runtime.chain.trust)

    old = [api.get(f"/api/v1/records/{i}/proof").json() for i in ids]
    assert verdict(ids[0]).check("issuer").reason == "category_issuer"
    env = {**os.environ, "QIYEMA_HOME": str(runtime.settings.home), "QIYEMA_CHAIN_RPC_URL": runtime.settings.chain_rpc_url,
           "QIYEMA_DATABASE_URL": runtime.settings.db_url}
    cli = [sys.executable, "-m", "materials_api.cli", "keys"]
    out = subprocess.run(cli + ["compromise", "--role", "issuer", "--organisation", str(org), "--from-block", "all",
                                "--yes"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "2 record(s)" in out.stdout, out.stdout + out.stderr
    address = out.stdout.split("--address ")[1].split()[0]
    assert verdict(ids[0]).check("issuer").reason == "key_compromised"
    out = subprocess.run(cli + ["rewitness", "--role", "issuer", "--organisation", str(org), "--address", address,
                                "--from-block", "all"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "2 record(s) in 2 batch(es) sealed anew" in out.stdout  # one batch a single record, out.stdout + out.stderr
    runtime.chain.keys.forget()
    api.app.state.records.reconcile()  # the records loop, with the organisation's current key
    for i, before in zip(ids, old):
        v = verdict(i)
        assert v.status.value == "VALID" and v.check("issuer").reason == "category_issuer", v.as_dict()
        stale = verdict(i, before)
        assert stale.status.value == "INVALID" and stale.check("issuer").reason == "key_compromised"
