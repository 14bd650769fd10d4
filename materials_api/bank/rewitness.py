"""A way back after a compromise, for the material bank: what a notary key declared compromised
anchored, and witnessing again, under the current notary, every material of it whose bytes the
store still holds unaltered (`qiyema keys rewitness --role notary`, docs/operations.md §3)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy import func, select, update

from materials_api.bank.materials import MaterialService
from materials_api.bank.models import AnchorBatch, Material, MaterialState, ReplacedProof
from materials_api.platform.models import ChainState
from materials_api.platform.storage import StorageError

REPLACED = "replaced"  # an AnchorBatch whose anchorer's key was declared compromised, its materials witnessed again


def written_by(bank: MaterialService, anchorer: str, from_block: int) -> tuple[list[AnchorBatch], int]:
    """The confirmed batches `anchorer` anchored from `from_block` on (the chain says who
    anchored each) and how many live materials they hold: what declaring it compromised
    invalidates."""
    with bank.sessions() as s:
        batches = list(s.scalars(select(AnchorBatch).where(
            AnchorBatch.state == ChainState.CONFIRMED.value, AnchorBatch.block_number >= from_block)
            .order_by(AnchorBatch.id)))
    mine = [b for b in batches
            if (onchain := bank.chain.ledger.anchor_of(b.root)) is not None and onchain.anchorer.lower() == anchorer.lower()]
    if not mine:
        return [], 0
    with bank.sessions() as s:
        held = s.scalar(select(func.count()).select_from(Material).where(
            Material.batch_id.in_([b.id for b in mine]), Material.state == MaterialState.ANCHORED.value))
    return mine, held


def rewitness(bank: MaterialService, anchorer: str, from_block: int) -> tuple[int, int]:
    """Witness again, under the current notary, every material of the batches `anchorer`
    anchored from `from_block` on whose bytes the store still holds unaltered: each gets a fresh
    salt and goes into a new batch (the anchoring loop sends it); its old place is kept as a
    `ReplacedProof`, so a verifier handed the old bundle is told of the new one. Returns
    (materials witnessed again, materials left out because their bytes are gone or altered)."""
    batches, _ = written_by(bank, anchorer, from_block)
    if not batches:
        return 0, 0
    with bank.sessions() as s:
        materials = list(s.scalars(select(Material).where(
            Material.batch_id.in_([b.id for b in batches]), Material.state == MaterialState.ANCHORED.value)))
    roots = {b.id: b.root for b in batches}
    again, left = [], 0
    for m in materials:
        try:
            held = bank.held_sha256(m)
        except StorageError:
            left += 1
            continue
        if held.hex() != m.sha256:
            left += 1  # the store no longer holds what was fingerprinted: nothing to vouch for
            continue
        again.append(m)
    with bank.sessions.begin() as s:
        for m in again:
            s.add(ReplacedProof(material_id=m.id, root=roots[m.batch_id], leaf_index=m.leaf_index, anchorer=anchorer))
        if again:
            s.execute(update(Material), [
                {"id": m.id, "state": MaterialState.CONFIRMED.value, "batch_id": None, "leaf_index": None,
                 "leaf": None, "proof": None, "salt": secrets.token_bytes(32),
                 "proof_replaced_at": datetime.now(timezone.utc)} for m in again])
        for batch in batches:
            s.execute(update(AnchorBatch).where(AnchorBatch.id == batch.id).values(state=REPLACED))
    return len(again), left
