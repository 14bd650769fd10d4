"""Independent verification of a material or a record against its proof bundle, straight from
the chain: no service, no database. Used by `qiyema material verify`, `qiyema records verify` and
by the service itself. Its checks are steps of the one verification pipeline (chain/verdict.py).

A material's bundle (version 1) is anchored by a notary and revoked by its leaf's bit; a record's
(version 2) is issued by a holder of its category's issuer role and has a status of its own on
chain (valid, suspended, revoked). Both are read in the same one call (`leafStatus`), with the
role the bundle's kind calls for."""

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
from .ledger import issuer_role
from .proof import ProofBundle, ProofError, record_content_sha256
from .trust import Trust
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
_SUSPENDED, _REVOKED = 2, 3  # IRecordRegistry.RecordStatus


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
    trust: Trust
    leaf: LeafStatus | None = None  # read once, in one call, by the first step that needs the chain
    anchor_invalid: bool = False
    failure: SourceUnavailable | None = None  # a batch read that failed for every item in it

    @property
    def is_record(self) -> bool:
        return self.bundle.category is not None

    @property
    def role(self) -> bytes:
        return issuer_role(self.bundle.category) if self.is_record else NOTARY_ROLE

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
                                             self.bundle.leaf.index, self.bundle.leaf_hash, self.role)
            except (ChainError, ValueError) as exc:  # unreachable, slow, or an answer that does not decode
                raise chain_unavailable(exc) from None
        return self.leaf


_NO_CHAIN = "no chain node given"


def _integrity(m: _Material) -> Check:
    if m.content_sha256 is None:
        return Check(CheckName.INTEGRITY, Status.SKIPPED, Reason.NO_CONTENT,
                     "no record content given" if m.is_record else "no file or hash given")
    if m.content_sha256 == m.bundle.leaf.content_sha256:
        if m.is_record:
            return Check(CheckName.INTEGRITY, Status.VALID, Reason.CONTENT_MATCHES, "the record is as issued")
        return Check(CheckName.INTEGRITY, Status.VALID, Reason.HASH_MATCHES, "the bytes are the ones fingerprinted")
    if m.is_record:
        return Check(CheckName.INTEGRITY, Status.INVALID, Reason.CONTENT_ALTERED, "the record differs from what was issued")
    return Check(CheckName.INTEGRITY, Status.INVALID, Reason.HASH_MISMATCH,
                 "the bytes differ from the fingerprinted ones (altered or another file)")


def _proof(m: _Material) -> Check:
    if m.bundle.proves():
        return Check(CheckName.PROOF, Status.VALID, Reason.PATH_LEADS_TO_ROOT, f"{len(m.bundle.proof)} step(s) to the root")
    return Check(CheckName.PROOF, Status.INVALID, Reason.PATH_MISMATCH, "the Merkle path does not lead to the root")


def _pinned(m: _Material) -> Check | None:
    # Before anything asks the chain: a contract nobody pinned is no witness, whatever it answers.
    anchor = m.bundle.anchor
    if not m.trust.trusts(anchor.chain_id, anchor.contract):
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.UNKNOWN_CONTRACT,
                     f"chain {anchor.chain_id}, contract {anchor.contract} is not on the trust list")
    if m.bundle.digest != m.trust.tree_hash:  # the pinned deployments hash their proofs one way only
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.BUNDLE_PROFILE,
                     f"the bundle is hashed with {m.bundle.digest}; the trusted deployments with {m.trust.tree_hash}")
    return None


def _anchor(m: _Material) -> Check:
    if m.client is None:
        return Check(CheckName.ANCHOR, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    st = m.status()
    m.anchor_invalid = True
    if not st.anchored:
        if st.block_number < m.bundle.anchor.block_number:
            # A lagging node has not seen the anchoring yet: liveness, not forgery.
            raise SourceUnavailable(f"the node is at block {st.block_number}, the proof was anchored in block "
                                    f"{m.bundle.anchor.block_number}", Source.CHAIN, Reason.NODE_BEHIND)
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
    if m.is_record:
        role, held, not_held = f"{m.bundle.category} issuer", Reason.CATEGORY_ISSUER, Reason.NOT_CATEGORY_ISSUER
    else:
        role, held, not_held = "notary", Reason.NOTARY, Reason.NOT_NOTARY
    return writer_check(role, st.anchored_block, held=st.anchorer_held_role, retired=st.anchorer_retired,
                        compromised_from=st.compromised_from_block if st.anchorer_compromised else None,
                        held_reason=held, not_held_reason=not_held)


def _liveness(m: _Material) -> Check:
    age = m.now - m.status().block_timestamp
    if age > m.max_head_age:
        return Check(CheckName.LIVENESS, Status.ERROR, Reason.CHAIN_HALTED,
                     f"the newest block is {age} s old: the chain has halted, so a revocation sent since cannot be seen")
    return Check(CheckName.LIVENESS, Status.VALID, Reason.CHAIN_LIVE, f"newest block {age} s old")


def _status(m: _Material) -> Check:
    if m.is_record:
        return _record_status(m)
    expired = m.bundle.leaf.valid_until and m.bundle.leaf.valid_until < m.now
    if m.client is not None and m.status().revoked:
        return Check(CheckName.STATUS, Status.INVALID, Reason.REVOKED, "the material was revoked or withdrawn")
    if expired:
        return Check(CheckName.STATUS, Status.INVALID, Reason.EXPIRED, "the material's validity date has passed")
    if m.client is None:
        return Check(CheckName.STATUS, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    return Check(CheckName.STATUS, Status.VALID, Reason.CURRENT, "not revoked, not expired")


def _record_status(m: _Material) -> Check:
    if m.client is not None:
        on_chain = m.status().record_status
        if on_chain == _SUSPENDED:
            return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_SUSPENDED, "suspended on chain (暂停)")
        if on_chain == _REVOKED:
            return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_REVOKED_ON_CHAIN, "revoked on chain (撤销/吊销)")
        if on_chain == 0:
            return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_REVOKED_ON_CHAIN,
                         "the chain holds no record at this place (not a batch of records)")
    if m.bundle.leaf.valid_until and m.bundle.leaf.valid_until < m.now:
        return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_EXPIRED, "the validity window has ended")
    if m.client is None:
        return Check(CheckName.STATUS, Status.SKIPPED, Reason.NO_CHAIN, _NO_CHAIN)
    return Check(CheckName.STATUS, Status.VALID, Reason.IN_FORCE, "in force on chain")


STEPS: tuple[Step[_Material], ...] = (
    Step(CheckName.INTEGRITY, _integrity),
    Step(CheckName.PROOF, _proof),
    Step(CheckName.ANCHOR, _pinned, final=True),
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
                     trust: Trust, now: int | None = None, max_head_age: float = 0, chunk: int = 500,
                     on_progress: Callable[[int], None] | None = None) -> list[Verdict]:
    """Batch verification: one verdict per (bundle, content SHA-256 or None), the same checks as
    `verify_material`, with the chain read in one `eth_call` per `chunk` leaves of one contract
    (each verdict still rests on one block: the block of its chunk's call)."""
    now = int(time.time()) if now is None else now
    ms = [_Material(bundle, digest, client, now, max_head_age, trust) for bundle, digest in items]
    if client is not None and ms:
        try:
            chain_id = client.chain_id
        except ChainError as exc:
            chain_id, down = None, chain_unavailable(exc)
            for m in ms:
                m.failure = down
        groups: dict[tuple[str, bytes], list[_Material]] = {}
        for m in ms:
            if (chain_id is not None and m.bundle.anchor.chain_id == chain_id  # others: WRONG_CHAIN, one by one
                    and trust.trusts(m.bundle.anchor.chain_id, m.bundle.anchor.contract)):  # others: never asked
                groups.setdefault((m.bundle.anchor.contract.lower(), m.role), []).append(m)
        for (_contract, role), members in groups.items():
            for at in range(0, len(members), chunk):
                part = members[at:at + chunk]
                try:
                    statuses = read_leaf_statuses(client, part[0].bundle.anchor.contract,
                                                  [(m.bundle.root, m.bundle.leaf.index, m.bundle.leaf_hash)
                                                   for m in part], role)
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
                    trust: Trust, now: int | None = None, max_head_age: float = 0) -> Verdict:
    """Checks: integrity (bytes match the leaf), proof (leaf leads to root), anchor (the bundle's
    chain id and contract are on the pinned `trust` list, else INVALID `unknown_contract` and the
    chain is not asked; the root on chain, or ERROR `node_behind` when the node has not reached
    the anchoring block), issuer (the anchorer held the notary role when it anchored, its key not compromised
    then; for a record's bundle, its category's issuer role), status (not revoked, not expired;
    a record: not suspended or revoked on chain) and,
    with `max_head_age` > 0 on a chain that seals blocks on a clock, liveness (the node's newest
    block is recent; on a halted chain a revocation sent since cannot be seen)."""
    now = int(time.time()) if now is None else now
    return _verdict(_Material(bundle, content_sha256, client, now, max_head_age, trust))


def verify_record(bundle: ProofBundle, *, content: dict | None, client: ChainClient | None, trust: Trust,
                  now: int | None = None, max_head_age: float = 0) -> Verdict:
    """A record's bundle (version 2) against the chain, with the record's content (`uscc`,
    `kind`, `number`, `data`, `valid_from`, `valid_until`) checked against its leaf when given."""
    if bundle.category is None:
        raise ProofError("bundle_kind", "this is a material's bundle (version 1): verify it as a material")
    digest = None
    if content is not None:
        try:
            digest = record_content_sha256(content["uscc"], content["kind"], content.get("number"),
                                           content.get("data") or {}, content.get("valid_from"),
                                           content.get("valid_until"))
        except (KeyError, TypeError) as exc:
            raise ProofError("record_malformed", f"the record needs uscc, kind, number, data, valid_from and "
                                                 f"valid_until: {exc}") from None
    return verify_material(bundle, content_sha256=digest, client=client, trust=trust, now=now,
                           max_head_age=max_head_age)
