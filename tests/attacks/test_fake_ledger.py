"""Attack: a second deployment of the real contracts, governed by the attacker, witnessing a
forged document. Every verification path must say INVALID `unknown_contract` (and never ask the
attacker's contract), whatever that contract answers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from chain.material_verify import verify_material
from codes.uscc import chain_key
from tests.attacks.conftest import FORGED, USCC

pytestmark = pytest.mark.anvil


def _reasons(body: dict) -> dict:
    return {c["name"]: (c["status"], c["reason"]) for c in body["checks"]}


def test_the_fake_ledger_really_answers_valid_for_the_forgery(service, attacker):
    """The premise: the attacker's contract does say anchored, notary, current. An unpinned
    verifier (trusting what the bundle names) would say VALID."""
    from chain.trust import Trust

    bundle = attacker.forged_bundle(FORGED, chain_key(USCC))
    naive = Trust.of([attacker.deployment])  # a verifier that pinned the attacker's own deployment
    verdict = verify_material(bundle, content_sha256=hashlib.sha256(FORGED).digest(),
                              client=attacker.client, trust=naive)
    assert verdict.status.value == "VALID", verdict.as_dict()


def test_api_single_and_batch_refuse_a_bundle_of_another_deployment(service, attacker):
    api, runtime = service
    bundle = attacker.forged_bundle(FORGED, chain_key(USCC))
    assert bundle.anchor.chain_id == runtime.chain.client.chain_id  # same chain, other contract
    r = api.post("/api/v1/verify/material", files={"file": ("licence.pdf", FORGED, "application/pdf")},
                 data={"bundle": bundle.dumps()})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "INVALID" and _reasons(body)["anchor"] == ("INVALID", "unknown_contract")
    assert "issuer" not in _reasons(body) and "status" not in _reasons(body)  # the fake was never asked
    r = api.post("/api/v1/verify/materials", json={"items": [
        {"bundle": bundle.to_json(), "sha256": hashlib.sha256(FORGED).hexdigest()}]})
    assert r.status_code == 200 and r.json()["counts"] == {"INVALID": 1}
    assert _reasons(r.json()["verdicts"][0])["anchor"] == ("INVALID", "unknown_contract")


def test_a_record_bundle_of_another_deployment_is_refused(service, attacker):
    _, runtime = service
    record = {"uscc": USCC, "kind": "food_business", "number": "JY-forged", "data": {}, "valid_from": None,
              "valid_until": None}
    from chain.material_verify import verify_record
    from chain.proof import record_content_sha256

    forged = record_content_sha256(**record)
    bundle = attacker.forged_bundle(None, chain_key(USCC), category="permit.food", content_sha256=forged)
    verdict = verify_record(bundle, content=record, client=runtime.chain.client, trust=runtime.chain.trust)
    assert verdict.check("integrity").reason == "content_matches" and verdict.check("proof").status.value == "VALID"
    assert verdict.status.value == "INVALID" and verdict.check("anchor").reason == "unknown_contract"


def test_the_command_line_refuses_it_with_the_homes_trust_list_and_with_a_pinned_file(service, attacker, tmp_path):
    _, runtime = service
    bundle = attacker.forged_bundle(FORGED, chain_key(USCC))
    (tmp_path / "licence.pdf").write_bytes(FORGED)
    (tmp_path / "licence.pdf.proof.json").write_text(bundle.dumps())
    env = {**os.environ, "QIYEMA_HOME": str(runtime.settings.home), "QIYEMA_CHAIN_RPC_URL": runtime.settings.chain_rpc_url}
    cli = [sys.executable, "-m", "materials_api.cli"]
    out = subprocess.run(cli + ["material", "verify", str(tmp_path / "licence.pdf"), "--proof",
                                str(tmp_path / "licence.pdf.proof.json"), "--json"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert _reasons(json.loads(out.stdout))["anchor"] == ("INVALID", "unknown_contract")
    # A verifier elsewhere: the published list, pinned by the governor's address alone.
    published = tmp_path / "trust.json"
    published.write_text(json.dumps(runtime.chain.trust_list.to_json()))
    pinned = ["--trust-list", str(published), "--governor", runtime.chain.governor.address]
    out = subprocess.run(cli + ["material", "verify-batch", str(tmp_path), *pinned],
                         env={**env, "QIYEMA_HOME": str(tmp_path / "elsewhere")}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and out.stdout.startswith("INVALID"), out.stdout + out.stderr
    # The attacker's own list, signed by the attacker: refused against the pinned governor.
    from chain.trust import TrustedDeployment, TrustList

    theirs = TrustList(attacker.key.address, 0, [TrustedDeployment(bundle.anchor.chain_id, bundle.anchor.contract,
                                                                   "0x", 0)])
    theirs.sign(attacker.key, 1)
    published.write_text(json.dumps(theirs.to_json()))
    out = subprocess.run(cli + ["material", "verify-batch", str(tmp_path), *pinned],
                         env={**env, "QIYEMA_HOME": str(tmp_path / "elsewhere")}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "not signed by the trusted governor" in out.stderr


def test_the_published_trust_list_is_signed_once_and_names_only_the_services_deployment(service, attacker):
    api, runtime = service
    first = api.get("/api/v1/codes/trust-list").json()
    assert first == api.get("/api/v1/codes/trust-list").json()  # not re-signed per request
    from chain.trust import TrustList

    trust = TrustList.from_json(first).check(runtime.chain.governor.address)
    assert trust.trusts(runtime.chain.client.chain_id, runtime.chain.deployment.address)
    assert not trust.trusts(runtime.chain.client.chain_id, attacker.deployment.address)
    keyset = api.get("/api/v1/codes/keyset").json()
    assert keyset == api.get("/api/v1/codes/keyset").json()  # the governor signs once per change
