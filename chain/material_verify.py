"""Independent verification of a material against its proof bundle, straight from the chain:
no service, no database. Used by `qiyema material verify` and by the service itself. Its checks
are steps of the one verification pipeline (chain/verdict.py)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from .client import ChainClient
from .compile import artifact
from .errors import ChainError
from .proof import ProofBundle
from .verdict import Check, CheckName, Reason, Source, SourceUnavailable, Status, Step, Verdict, chain_unavailable, run

NOTARY_ROLE = keccak(text="qiyema.notary")  # the contract's constant; a test checks they agree


def sha256_of(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


@dataclass
class _Material:
    bundle: ProofBundle
    content_sha256: bytes | None
    client: ChainClient | None
    now: int
    max_head_age: float
    ledger: object = None
    anchorer: str | None = None
    anchor_invalid: bool = False

    def call(self, fn):
        try:
            return self.client.call(fn)
        except ChainError as exc:
            raise chain_unavailable(exc) from None

    def contract(self):
        if self.ledger is None:
            try:
                chain_id = self.client.chain_id
            except ChainError as exc:
                raise chain_unavailable(exc) from None
            if chain_id != self.bundle.anchor.chain_id:
                raise SourceUnavailable(f"the node serves chain {chain_id}, the proof is for chain "
                                        f"{self.bundle.anchor.chain_id}", Source.CHAIN, Reason.WRONG_CHAIN)
            self.ledger = self.client.contract(self.bundle.anchor.contract, artifact().abi)
        return self.ledger


_NO_CHAIN = "no chain node given"


def _integrity(m: _Material) -> Check:
    if m.content_sha256 is None:
        return Check(CheckName.INTEGRITY, Status.SKIPPED, Reason.NO_CONTENT, "no file or hash given")
    if m.content_sha256 == m.bundle.leaf.content_sha256:
        return Check(CheckName.INTEGRITY, Status.VALID, Reason.HASH_MATCHES, "the bytes are the ones fingerprinted")
    return Check(CheckName.INTEGRITY, Status.INVALID, Reason.HASH_MISMATCH,
                 "the bytes differ from the fingerprinted ones (altered or another file)")


def _proof(m: _Material) -> Check:
    if m.bundle.proves():
        return Check(CheckName.PROOF, Status.VALID, Reason.PATH_LEADS_TO_ROOT, f"{len(m.bundle.proof)} step(s) to the root")
    return Check(CheckName.PROOF, Status.INVALID, Reason.PATH_MISMATCH, "the Merkle path does not lead to the root")


def _anchor(m: _Material) -> Check:
    if m.client is None:
        return Check(CheckName.ANCHOR, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    anchorer, leaf_count, anchored_at = m.call(m.contract().functions.anchorOf(m.bundle.root))
    m.anchor_invalid = True
    if anchored_at == 0:
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.ROOT_NOT_ANCHORED, "the chain does not know this root")
    if m.bundle.leaf.index >= leaf_count:
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.INDEX_OUT_OF_BATCH, "the leaf index is outside its batch")
    m.anchor_invalid, m.anchorer = False, anchorer
    return Check(CheckName.ANCHOR, Status.VALID, Reason.ROOT_ANCHORED,
                 f"anchored at {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(anchored_at))} by {anchorer}")


def _issuer(m: _Material) -> Check:
    if m.client is None:
        return Check(CheckName.ISSUER, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    if m.call(m.contract().functions.hasRole(NOTARY_ROLE, m.anchorer)):
        return Check(CheckName.ISSUER, Status.VALID, Reason.NOTARY, "the anchorer holds the notary role")
    return Check(CheckName.ISSUER, Status.INVALID, Reason.NOT_NOTARY, "the anchorer no longer holds the notary role")


def _liveness(m: _Material) -> Check:
    try:
        age = m.now - m.client.head_timestamp()
    except ChainError as exc:
        raise chain_unavailable(exc) from None
    if age > m.max_head_age:
        return Check(CheckName.LIVENESS, Status.ERROR, Reason.CHAIN_HALTED,
                     f"the newest block is {age} s old: the chain has halted, so a revocation sent since cannot be seen")
    return Check(CheckName.LIVENESS, Status.VALID, Reason.CHAIN_LIVE, f"newest block {age} s old")


def _status(m: _Material) -> Check:
    expired = m.bundle.leaf.valid_until and m.bundle.leaf.valid_until < m.now
    if m.client is not None and m.call(m.contract().functions.isRevoked(m.bundle.root, m.bundle.leaf.index)):
        return Check(CheckName.STATUS, Status.INVALID, Reason.REVOKED, "the material was revoked or withdrawn")
    if expired:
        return Check(CheckName.STATUS, Status.INVALID, Reason.EXPIRED, "the material's validity date has passed")
    if m.client is None:
        return Check(CheckName.STATUS, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    return Check(CheckName.STATUS, Status.VALID, Reason.CURRENT, "not revoked, not expired")


STEPS: tuple[Step[_Material], ...] = (
    Step(CheckName.INTEGRITY, _integrity),
    Step(CheckName.PROOF, _proof),
    Step(CheckName.ANCHOR, _anchor, needs=Source.CHAIN),
    Step(CheckName.ISSUER, _issuer, needs=Source.CHAIN, applies=lambda m: not m.anchor_invalid),
    Step(CheckName.LIVENESS, _liveness, needs=Source.CHAIN,
         applies=lambda m: m.client is not None and m.max_head_age > 0),
    Step(CheckName.STATUS, _status, needs=Source.CHAIN),
)


def verify_material(bundle: ProofBundle, *, content_sha256: bytes | None, client: ChainClient | None,
                    now: int | None = None, max_head_age: float = 0) -> Verdict:
    """Checks: integrity (bytes match the leaf), proof (leaf leads to root), anchor (root on
    chain), issuer (the anchorer holds the notary role), status (not revoked, not expired) and,
    with `max_head_age` > 0 on a chain that seals blocks on a clock, liveness (the node's newest
    block is recent; on a halted chain a revocation sent since cannot be seen)."""
    now = int(time.time()) if now is None else now
    return run(STEPS, _Material(bundle, content_sha256, client, now, max_head_age))
