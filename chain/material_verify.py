"""Independent verification of a material against its proof bundle, straight from the chain:
no service, no database. Used by `qiyema material verify` and by the service itself."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import keccak

from .client import ChainClient
from .compile import artifact
from .errors import ChainError
from .proof import ProofBundle
from .verdict import Check, Status, combine


@dataclass
class MaterialVerdict:
    status: Status
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status.value, "checks": [c.as_dict() for c in self.checks]}


def sha256_of(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def verify_material(bundle: ProofBundle, *, content_sha256: bytes | None, client: ChainClient | None,
                    now: int | None = None, max_head_age: float = 0) -> MaterialVerdict:
    """Checks: integrity (bytes match the leaf), proof (leaf leads to root), anchor (root on
    chain), issuer (the anchorer holds the notary role), status (not revoked, not expired) and,
    with `max_head_age` > 0 on a chain that seals blocks on a clock, liveness (the node's newest
    block is recent; on a halted chain a revocation sent since cannot be seen)."""
    now = int(time.time()) if now is None else now
    checks: list[Check] = []
    if content_sha256 is None:
        checks.append(Check("integrity", Status.SKIPPED, "no_content", "no file or hash given"))
    elif content_sha256 == bundle.leaf.content_sha256:
        checks.append(Check("integrity", Status.VALID, "hash_matches", "the bytes are the ones fingerprinted"))
    else:
        checks.append(Check("integrity", Status.INVALID, "hash_mismatch",
                            "the bytes differ from the fingerprinted ones (altered or another file)"))
    if bundle.proves():
        checks.append(Check("proof", Status.VALID, "path_leads_to_root", f"{len(bundle.proof)} step(s) to the root"))
    else:
        checks.append(Check("proof", Status.INVALID, "path_mismatch", "the Merkle path does not lead to the root"))
    if bundle.leaf.valid_until and bundle.leaf.valid_until < now:
        expired = Check("status", Status.INVALID, "expired", "the material's validity date has passed")
    else:
        expired = None
    if client is None:
        for name in ("anchor", "issuer"):
            checks.append(Check(name, Status.SKIPPED, "no_chain", "no chain node given"))
        checks.append(expired or Check("status", Status.SKIPPED, "no_chain", "no chain node given"))
        return MaterialVerdict(combine(checks), checks)
    try:
        if client.chain_id != bundle.anchor.chain_id:
            raise _WrongChain(f"the node serves chain {client.chain_id}, the proof is for chain {bundle.anchor.chain_id}")
        ledger = client.contract(bundle.anchor.contract, artifact().abi)
        anchorer, leaf_count, anchored_at = client.call(ledger.functions.anchorOf(bundle.root))
        if anchored_at == 0:
            checks.append(Check("anchor", Status.INVALID, "root_not_anchored", "the chain does not know this root"))
        elif bundle.leaf.index >= leaf_count:
            checks.append(Check("anchor", Status.INVALID, "index_out_of_batch", "the leaf index is outside its batch"))
        else:
            checks.append(Check("anchor", Status.VALID, "root_anchored",
                                f"anchored at {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(anchored_at))}"
                                f" by {anchorer}"))
            if client.call(ledger.functions.hasRole(NOTARY_ROLE, anchorer)):
                checks.append(Check("issuer", Status.VALID, "notary", "the anchorer holds the notary role"))
            else:
                checks.append(Check("issuer", Status.INVALID, "not_notary", "the anchorer no longer holds the notary role"))
        if max_head_age > 0:
            age = now - client.head_timestamp()
            if age > max_head_age:
                checks.append(Check("liveness", Status.ERROR, "chain_halted",
                                    f"the newest block is {age} s old: the chain has halted, so a "
                                    f"revocation sent since cannot be seen"))
            else:
                checks.append(Check("liveness", Status.VALID, "chain_live", f"newest block {age} s old"))
        if client.call(ledger.functions.isRevoked(bundle.root, bundle.leaf.index)):
            checks.append(Check("status", Status.INVALID, "revoked", "the material was revoked or withdrawn"))
        else:
            checks.append(expired or Check("status", Status.VALID, "current", "not revoked, not expired"))
    except _WrongChain as exc:
        for name in ("anchor", "issuer", "status"):
            checks.append(Check(name, Status.ERROR, "wrong_chain", str(exc)))
    except ChainError as exc:
        done = {c.name for c in checks}
        for name in ("anchor", "issuer", "status") + (("liveness",) if max_head_age > 0 else ()):
            if name not in done:
                checks.append(Check(name, Status.ERROR, "chain_unavailable", f"could not ask the chain: {exc}"))
    return MaterialVerdict(combine(checks), checks)


NOTARY_ROLE = keccak(text="qiyema.notary")  # the contract's constant; a test checks they agree


class _WrongChain(Exception):
    pass
