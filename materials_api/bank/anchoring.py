"""Anchoring: confirmed materials become salted leaves, one Merkle root per batch goes on chain.

Every step is written ahead in the database, so a crash anywhere loses nothing and anchors
nothing twice:
1. build: leaves, tree, proofs and the batch row are written in one transaction (PENDING);
2. send: the transaction hash is kept (SENT);
3. confirm: the receipt marks the batch CONFIRMED and its materials ANCHORED.
On start (and every pass) open batches are settled from the chain's own view: a root the chain
knows is confirmed, one it does not is sent again. A batch recorded as confirmed whose root the
chain no longer knows (a reset chain) is re-anchored by `reconcile_all`. Revocations and
withdrawals of materials that have leaves are sent from here too, idempotently.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.errors import TransactionReverted
from chain.proof import LeafInput, MerkleTree
from codes.uscc import chain_key
from materials_api.bank.models import AnchorBatch, Material, MaterialState
from materials_api.platform.failpoints import failpoint
from materials_api.platform.models import ChainState
from materials_api.platform.runtime import ChainContext
from materials_api.registry.models import Enterprise

log = logging.getLogger("qiyema.anchoring")


@dataclass
class PassResult:
    anchored: int = 0
    batches: int = 0
    revoked: int = 0


class _Outrun(Exception):
    pass


class Anchorer:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, *, batch_size: int = 1024,
                 max_wait: float = 2.0, in_flight: int = 8):
        self.in_flight = in_flight
        self.sessions = sessions
        self.chain = chain
        self.batch_size = batch_size
        self.max_wait = max_wait
        self._lock = threading.Lock()  # one pass at a time in this process

    # --- one pass ----------------------------------------------------------------------------
    def run_once(self, *, force: bool = False) -> PassResult:
        with self._lock:
            result = PassResult()
            result.anchored += self._settle_open_batches()
            while True:
                # Up to `in_flight` batches are sent before waiting for the first receipt: a
                # block then carries several anchors, so throughput does not fall with the
                # block period (each is written ahead, so a crash in between loses nothing).
                sent = []
                while len(sent) < self.in_flight:
                    batch_id = self._build_batch(force=force)
                    if batch_id is None:
                        break
                    failpoint("anchor.after_build")
                    self._send(batch_id)
                    sent.append(batch_id)
                if not sent:
                    break
                result.batches += len(sent)
                result.anchored += sum(self._wait_and_confirm(b) for b in sent)
            result.revoked = self._send_revocations()
            return result

    def _build_batch(self, *, force: bool) -> int | None:
        with self.sessions() as s:
            rows = list(s.execute(
                select(Material, Enterprise.uscc).join(Enterprise, Enterprise.id == Material.enterprise_id)
                .where(Material.state == MaterialState.CONFIRMED.value, Material.batch_id.is_(None))
                .order_by(Material.confirmed_at, Material.id).limit(self.batch_size)))
        if not rows:
            return None
        oldest = rows[0][0].confirmed_at
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        if not force and len(rows) < self.batch_size and \
                datetime.now(timezone.utc) - oldest < timedelta(seconds=self.max_wait):
            return None
        leaves = []
        for index, (m, uscc) in enumerate(rows):
            leaves.append(LeafInput(bytes.fromhex(m.sha256), chain_key(uscc), m.type_code, m.version,
                                    m.valid_until or 0, index, m.salt).hash())
        tree = MerkleTree(leaves)
        try:
            return self._write_batch(rows, leaves, tree)
        except (_Outrun, IntegrityError):
            log.warning("materials were batched by another instance meanwhile; this batch is dropped")
            return None

    def _write_batch(self, rows, leaves: list[bytes], tree: MerkleTree) -> int:
        with self.sessions.begin() as s:
            batch = AnchorBatch(root=tree.root, leaf_count=len(leaves), state=ChainState.PENDING.value,
                                chain_id=self.chain.client.chain_id, contract=self.chain.deployment.address)
            s.add(batch)
            s.flush()
            # Claim the rows first: if another instance (a lease holder that has just lost its
            # lease) batched any of them meanwhile, this batch is abandoned, never anchored.
            claimed = s.execute(update(Material).where(Material.id.in_([m.id for m, _ in rows]),
                                                       Material.batch_id.is_(None))
                                .values(batch_id=batch.id)
                                .execution_options(synchronize_session=False)).rowcount
            if claimed != len(rows):
                raise _Outrun()
            # One executemany: bulk UPDATE by primary key.
            s.execute(update(Material), [
                {"id": m.id, "batch_id": batch.id, "leaf_index": index, "leaf": leaves[index],
                 "proof": json.dumps([p.hex() for p in tree.proof(index)])}
                for index, (m, _) in enumerate(rows)])
            return batch.id

    def _send_and_confirm(self, batch_id: int) -> int:
        self._send(batch_id)
        return self._wait_and_confirm(batch_id)

    def _send(self, batch_id: int) -> None:
        """Send the batch's anchor unless the chain already has its root; keep the hash."""
        with self.sessions() as s:
            batch = s.get(AnchorBatch, batch_id)
        ledger = self.chain.ledger
        if ledger.anchor_of(batch.root) is not None:
            return
        try:
            tx_hash = ledger.send_anchor(self.chain.notary, batch.root, batch.leaf_count)
        except TransactionReverted as exc:
            if exc.error != "RootAlreadyAnchored":
                raise
            return
        failpoint("anchor.after_send")
        with self.sessions.begin() as s:
            s.execute(update(AnchorBatch).where(AnchorBatch.id == batch_id).values(
                state=ChainState.SENT.value, tx_hash=tx_hash))

    def _wait_and_confirm(self, batch_id: int) -> int:
        with self.sessions() as s:
            batch = s.get(AnchorBatch, batch_id)
        if batch.state == ChainState.SENT.value and batch.tx_hash:
            try:
                self.chain.client.wait(batch.tx_hash)
            except TransactionReverted as exc:
                if exc.error != "RootAlreadyAnchored":
                    raise
            failpoint("anchor.after_receipt")
        return self._confirm(batch_id)

    def _confirm(self, batch_id: int) -> int:
        with self.sessions() as s:
            batch = s.get(AnchorBatch, batch_id)
        onchain = self.chain.ledger.anchor_of(batch.root)
        if onchain is None:
            return 0
        block = batch.block_number
        if batch.tx_hash:
            try:
                block = self.chain.client.w3.eth.get_transaction_receipt(batch.tx_hash)["blockNumber"]
            except Exception:  # noqa: BLE001 - a node that pruned the receipt still has the anchor
                pass
        with self.sessions.begin() as s:
            s.execute(update(AnchorBatch).where(AnchorBatch.id == batch_id).values(
                state=ChainState.CONFIRMED.value, anchored_at=onchain.anchored_at, block_number=block))
            n = s.execute(update(Material).where(Material.batch_id == batch_id,
                                                 Material.state == MaterialState.CONFIRMED.value)
                          .values(state=MaterialState.ANCHORED.value)).rowcount
        return n

    def _settle_open_batches(self) -> int:
        with self.sessions() as s:
            open_ids = list(s.scalars(select(AnchorBatch.id).where(
                AnchorBatch.state != ChainState.CONFIRMED.value).order_by(AnchorBatch.id)))
        return sum(self._send_and_confirm(i) for i in open_ids)

    def reconcile_all(self) -> int:
        """At start: re-anchor confirmed batches the chain no longer knows (reset or new chain)."""
        with self.sessions() as s:
            batches = list(s.execute(select(AnchorBatch.id, AnchorBatch.root)
                                     .where(AnchorBatch.state == ChainState.CONFIRMED.value)))
        lost = [b.id for b in batches if self.chain.ledger.anchor_of(b.root) is None]
        if lost:
            log.warning("%d anchored batch(es) unknown to the chain: re-anchoring", len(lost))
            with self.sessions.begin() as s:
                s.execute(update(AnchorBatch).where(AnchorBatch.id.in_(lost)).values(
                    state=ChainState.PENDING.value, tx_hash=None, chain_id=self.chain.client.chain_id,
                    contract=self.chain.deployment.address))
                s.execute(update(Material).where(Material.batch_id.in_(lost),
                                                 Material.revocation_state == ChainState.CONFIRMED.value)
                          .values(revocation_state=ChainState.PENDING.value))
        return len(lost)

    # --- revocations ---------------------------------------------------------------------------
    def _send_revocations(self) -> int:
        with self.sessions() as s:
            rows = list(s.execute(
                select(Material.id, Material.leaf_index, Material.revocation_reason, AnchorBatch.root,
                       AnchorBatch.state).join(AnchorBatch, AnchorBatch.id == Material.batch_id)
                .where(Material.revocation_state == ChainState.PENDING.value)))
            # Ended before it was ever batched: nothing on chain to revoke.
            s.execute(update(Material).where(Material.revocation_state == ChainState.PENDING.value,
                                             Material.batch_id.is_(None),
                                             Material.state.in_((MaterialState.WITHDRAWN.value,
                                                                 MaterialState.REVOKED.value)))
                      .values(revocation_state=None))
            s.commit()
        by_root: dict[bytes, list] = {}
        for r in rows:
            if r.state == ChainState.CONFIRMED.value:
                by_root.setdefault(r.root, []).append(r)
        done = 0
        ledger = self.chain.ledger
        for root, items in by_root.items():
            todo = [r for r in items if not ledger.is_revoked(root, r.leaf_index)]
            if todo:
                reason = "withdrawn" if all(r.revocation_reason == "withdrawn" for r in todo) else "revoked"
                ledger.revoke_leaves(self.chain.notary, root, sorted(r.leaf_index for r in todo), reason)
            with self.sessions.begin() as s:
                s.execute(update(Material).where(Material.id.in_([r.id for r in items]))
                          .values(revocation_state=ChainState.CONFIRMED.value))
            done += len(items)
        return done
