"""Attack (contract 1.5.0): `revokeLeaf(root, 3, leaf0, proof0)` checked the proof of leaf 0 but
set the bit of index 3, so a genuine, never-withdrawn material verified INVALID `revoked`. Since
1.6.0 a revocation by proof is kept by the leaf it proves; verifiers read it with the leaf."""

from __future__ import annotations

import hashlib

import pytest

from chain.proof import ProofBundle
from tests.attacks.conftest import deposit_batch, keys_for

pytestmark = pytest.mark.anvil


def _status(api, content, bundle):
    body = api.post("/api/v1/verify/material", json={"sha256": hashlib.sha256(content).hexdigest(),
                                                      "bundle": bundle}).json()
    return body["status"], {c["name"]: c["reason"] for c in body["checks"]}.get("status")


def test_a_revocation_by_proof_revokes_exactly_the_leaf_it_proves(service):
    api, runtime = service
    keys = keys_for(runtime)
    contents = [b"%PDF-1.7\n" + f"材料 {i} ".encode() * 300 for i in range(2)]
    got = deposit_batch(api, keys, contents)
    bundles = [ProofBundle.from_json(g["bundle"]) for g in got]
    assert bundles[0].root == bundles[1].root, "one batch"
    first, second = bundles
    if first.digest == "sm3":
        # The gm profile's trees: the contract cannot check an SM3 path, so it accepts no
        # revocation by proof at all (the service revokes by index, bound by the leaf's index).
        from chain.errors import TransactionReverted

        with pytest.raises(TransactionReverted) as refused:
            runtime.chain.ledger.revoke_leaf(runtime.chain.notary, first.root, first.leaf_hash, first.proof, "attack")
        assert refused.value.error == "InvalidProof"
        assert [_status(api, c, g["bundle"]) for c, g in zip(contents, got)] == [("VALID", "current")] * 2
        return
    # The notary's key (an insider, or a stolen notary key) revokes leaf 0 by its proof.
    runtime.chain.ledger.revoke_leaf(runtime.chain.notary, first.root, first.leaf_hash, first.proof, "attack")
    assert _status(api, contents[0], got[0]["bundle"]) == ("INVALID", "revoked")
    assert _status(api, contents[1], got[1]["bundle"]) == ("VALID", "current")  # its neighbour untouched
