"""Sealing records into salted Merkle batches (`seal`, when they are written ahead), and sealing a
batch anew (`reseal`): fresh salts and a new root, pending again. A batch is sealed anew when its
root was anchored first by another account (squatted) or when the key that issued it was
declared compromised and the organisation issues it again under its current key
(`rewitness`, `qiyema keys rewitness --role issuer`, docs/operations.md §3)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from chain.ledger import QiyemaLedger
from chain.proof import LeafInput, MerkleTree
from codes.uscc import chain_key
from materials_api.platform.models import ChainState
from materials_api.records.models import Record
from materials_api.registry.models import Enterprise

MAX_BATCH = 1024  # records per Merkle batch: one slot on chain (~52 gas a record issued 8 batches a transaction)
_R = Record.__table__


def seal(rows: list[dict], usccs: list[str], digest: str) -> None:
    """Give new record rows (with `kind`, `content_sha256`, `valid_until`) their salted leaves,
    MAX_BATCH to a Merkle batch: `salt`, `leaf_index`, `leaf`, `root`, hashed with `digest` (the
    profile's: keccak256 or sm3). Done when they are written ahead, so a batch is the same
    whenever and however often it is sent."""
    for start in range(0, len(rows), MAX_BATCH):
        chunk = rows[start:start + MAX_BATCH]
        salts = secrets.token_bytes(32 * len(chunk))  # one read of the system's CSPRNG a batch
        for index, (row, uscc) in enumerate(zip(chunk, usccs[start:start + MAX_BATCH])):
            row.update(salt=salts[32 * index:32 * index + 32], leaf_index=index)
            row["leaf"] = LeafInput(bytes.fromhex(row["content_sha256"]), chain_key(uscc), row["kind"], 1,
                                    row["valid_until"] or 0, index, row["salt"]).hash(digest)
        root = MerkleTree([row["leaf"] for row in chunk], digest).root
        for row in chunk:
            row["root"] = root


def reseal(sessions: sessionmaker, root: bytes, digest: str) -> int:
    """Seal the records of batch `root` anew: fresh salts, a new root, pending again (the
    records loop issues them). Returns how many."""
    engine = sessions.kw["bind"]
    with engine.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(
            select(Record.id, Record.kind, Record.content_sha256, Record.valid_until, Enterprise.uscc)
            .join(Enterprise, Enterprise.id == Record.enterprise_id)
            .where(Record.root == root).order_by(Record.leaf_index))]
    seal(rows, [r["uscc"] for r in rows], digest)
    with engine.begin() as c:
        for r in rows:
            c.execute(update(_R).where(_R.c.id == r["id"]).values(
                salt=r["salt"], leaf_index=r["leaf_index"], leaf=r["leaf"], root=r["root"],
                chain_state=ChainState.PENDING.value, tx_hash=None, block_number=None))
    return len(rows)


def written_by(sessions: sessionmaker, ledger: QiyemaLedger, organisation_id: int, anchorer: str,
               from_block: int) -> dict[bytes, int]:
    """The organisation's batches that `anchorer` (one of its keys) issued from `from_block` on,
    each with its number of records: what declaring that key compromised invalidates."""
    with sessions() as s:
        counts = s.execute(select(Record.root, func.count()).where(
            Record.issuer_organisation_id == organisation_id, Record.block_number >= from_block)
            .group_by(Record.root)).all()
    return {bytes(root): n for root, n in counts
            if (onchain := ledger.anchor_of(bytes(root))) is not None and onchain.anchorer.lower() == anchorer.lower()}


def rewitness(sessions: sessionmaker, ledger: QiyemaLedger, organisation_id: int, anchorer: str,
              from_block: int, digest: str) -> tuple[int, int]:
    """Issue again, under the organisation's current key, every record of its batches that
    `anchorer` (a key of it declared compromised) issued from `from_block` on: the database
    holds each record's content (from its source), so each batch is sealed anew and sent by the
    records loop. Returns (batches, records) sealed anew."""
    batches = written_by(sessions, ledger, organisation_id, anchorer, from_block)
    return len(batches), sum(reseal(sessions, root, digest) for root in batches)
