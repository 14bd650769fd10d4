"""Independent verification of a material against its proof bundle, straight from the chain:
no service, no database. Used by `qiyema material verify` and by the service itself. Its checks
are steps of the one verification pipeline (chain/verdict.py)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from eth_utils import keccak

from .client import ChainClient
from .errors import ChainError
from .leaf_status import LeafStatus, read_leaf_status, read_leaf_statuses
from .proof import ProofBundle
from .verdict import (
    Check,
    CheckName,
    Reason,
    Source,
    SourceUnavailable,
    Status,
    Step,
    Verdict,
    chain_unavailable,
    run,
    writer_check,
)

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
    leaf: LeafStatus | None = None  # read once, in one call, by the first step that needs the chain
    anchor_invalid: bool = False
    failure: SourceUnavailable | None = None  # a batch read that failed for every item in it

    def status(self) -> LeafStatus:
        if self.failure is not None:
            raise self.failure
        if self.leaf is None:
            try:
                chain_id = self.client.chain_id
            except ChainError as exc:
                raise chain_unavailable(exc) from None
            if chain_id != self.bundle.anchor.chain_id:
                raise SourceUnavailable(f"the node serves chain {chain_id}, the proof is for chain "
                                        f"{self.bundle.anchor.chain_id}", Source.CHAIN, Reason.WRONG_CHAIN)
            try:
                self.leaf = read_leaf_status(self.client, self.bundle.anchor.contract, self.bundle.root,
                                             self.bundle.leaf.index, NOTARY_ROLE)
            except (ChainError, ValueError) as exc:
                raise chain_unavailable(exc) from None
        return self.leaf


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
    st = m.status()
    m.anchor_invalid = True
    if not st.anchored:
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.ROOT_NOT_ANCHORED, "the chain does not know this root")
    if m.bundle.leaf.index >= st.leaf_count:
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.INDEX_OUT_OF_BATCH, "the leaf index is outside its batch")
    m.anchor_invalid = False
    return Check(CheckName.ANCHOR, Status.VALID, Reason.ROOT_ANCHORED,
                 f"anchored at {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(st.anchored_at))} by {st.anchorer}")


def _issuer(m: _Material) -> Check:
    if m.client is None:
        return Check(CheckName.ISSUER, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    st = m.status()
    return writer_check("notary", st.anchored_block, held=st.anchorer_held_role, retired=st.anchorer_retired,
                        compromised_from=st.compromised_from_block if st.anchorer_compromised else None,
                        held_reason=Reason.NOTARY, not_held_reason=Reason.NOT_NOTARY)


def _liveness(m: _Material) -> Check:
    age = m.now - m.status().block_timestamp
    if age > m.max_head_age:
        return Check(CheckName.LIVENESS, Status.ERROR, Reason.CHAIN_HALTED,
                     f"the newest block is {age} s old: the chain has halted, so a revocation sent since cannot be seen")
    return Check(CheckName.LIVENESS, Status.VALID, Reason.CHAIN_LIVE, f"newest block {age} s old")


def _status(m: _Material) -> Check:
    expired = m.bundle.leaf.valid_until and m.bundle.leaf.valid_until < m.now
    if m.client is not None and m.status().revoked:
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


def _verdict(m: _Material) -> Verdict:
    verdict = run(STEPS, m)
    if m.leaf is not None:  # every chain check above rests on this one block
        verdict.facts["block"] = {"number": m.leaf.block_number, "timestamp": m.leaf.block_timestamp}
    return verdict


def verify_materials(items: Iterable[tuple[ProofBundle, bytes | None]], *, client: ChainClient | None,
                     now: int | None = None, max_head_age: float = 0, chunk: int = 500,
                     on_progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """Batch verification: one verdict per (bundle, content SHA-256 or None), the same checks as
    `verify_material`, with the chain read in one `eth_call` per `chunk` leaves of one contract
    (each verdict still rests on one block: the block of its chunk's call)."""
    now = int(time.time()) if now is None else now
    ms = [_Material(bundle, digest, client, now, max_head_age) for bundle, digest in items]
    if client is not None and ms:
        try:
            chain_id = client.chain_id
        except ChainError as exc:
            chain_id, down = None, chain_unavailable(exc)
            for m in ms:
                m.failure = down
        groups: dict[str, list[_Material]] = {}
        for m in ms:
            if chain_id is not None and m.bundle.anchor.chain_id == chain_id:  # others: WRONG_CHAIN, one by one
                groups.setdefault(m.bundle.anchor.contract.lower(), []).append(m)
        for contract, members in groups.items():
            for at in range(0, len(members), chunk):
                part = members[at:at + chunk]
                try:
                    statuses = read_leaf_statuses(client, part[0].bundle.anchor.contract,
                                                  [(m.bundle.root, m.bundle.leaf.index) for m in part], NOTARY_ROLE)
                except (ChainError, ValueError) as exc:
                    down = chain_unavailable(exc)
                    for m in part:
                        m.failure = down
                    continue
                for m, st in zip(part, statuses):
                    m.leaf = st
    verdicts = []
    for i, m in enumerate(ms):
        verdicts.append(_verdict(m))
        if on_progress is not None and (i + 1) % 100 == 0:
            on_progress(100)
    if on_progress is not None and len(ms) % 100:
        on_progress(len(ms) % 100)
    return verdicts


def verify_material(bundle: ProofBundle, *, content_sha256: bytes | None, client: ChainClient | None,
                    now: int | None = None, max_head_age: float = 0) -> Verdict:
    """Checks: integrity (bytes match the leaf), proof (leaf leads to root), anchor (root on
    chain), issuer (the anchorer held the notary role when it anchored, its key not compromised then), status (not revoked, not expired) and,
    with `max_head_age` > 0 on a chain that seals blocks on a clock, liveness (the node's newest
    block is recent; on a halted chain a revocation sent since cannot be seen)."""
    now = int(time.time()) if now is None else now
    return _verdict(_Material(bundle, content_sha256, client, now, max_head_age))
