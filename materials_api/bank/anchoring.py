"""Anchoring: confirmed materials become salted leaves, one Merkle root per batch goes on chain.

Every step is written ahead in the database, so a crash anywhere loses nothing and anchors
nothing twice:
1. build: leaves, tree, proofs and the batch row are written in one transaction (PENDING);
2. send, through the chain outbox (platform/outbox.py): the transaction hash is kept (SENT);
3. confirm: the receipt from the outbox's wait marks the batch CONFIRMED and its materials ANCHORED.
On start (and every pass) open batches are settled: a sent one from its hash, a pending one is
sent again (the chain refusing a root it already holds counts as delivered). A batch recorded as confirmed whose root the
chain no longer knows (a reset chain) is re-anchored by `requeue_lost`. Revocations and
withdrawals of materials that have leaves are sent from here too, idempotently.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.client import Receipt
from chain.errors import ChainTimeout, TransactionReverted
from chain.proof import LeafInput, MerkleTree
from codes.uscc import chain_key
from materials_api.bank.models import AnchorBatch, Material, MaterialState
from materials_api.platform.failpoints import failpoint
from materials_api.platform.models import ChainState
from materials_api.platform.outbox import Delivery, Outbox, Table, backlog
from materials_api.platform.runtime import ChainContext
from materials_api.registry.models import Enterprise

SQUATTED = "squatted"  # an AnchorBatch whose root another account anchored first: its materials were re-batched
log = logging.getLogger("qiyema.anchoring")


@dataclass
class PassResult:
    anchored: int = 0
    batches: int = 0
    revoked: int = 0


class _Outrun(Exception):
    pass


BATCHES = Table(AnchorBatch, state="state")


class Anchorer:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, *, batch_size: int = 1024,
                 max_wait: float = 2.0, in_flight: int = 8, outbox: Outbox | None = None):
        self.sessions = sessions
        self.chain = chain
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.outbox = outbox or Outbox(sessions, chain.client, in_flight)
        # Told of every batch confirmed: its leaf count and each material's wait from confirmation.
        self.on_anchored: Callable[[int, list[float]], None] | None = None
        self._lock = threading.Lock()  # one pass at a time in this process

    # --- one pass ----------------------------------------------------------------------------
    def run_once(self, *, force: bool = False) -> PassResult:
        with self._lock:
            result = PassResult()
            result.anchored += self._settle_open_batches()
            while True:
                # A window of batches is built, then sent before the first receipt is awaited
                # (the outbox's in-flight window): a block then carries several anchors.
                batches = []
                while len(batches) < self.outbox.in_flight:
                    batch = self._build_batch(force=force)
                    if batch is None:
                        break
                    failpoint("anchor.after_build")
                    batches.append(batch)
                if not batches:
                    break
                result.batches += len(batches)
                result.anchored += self.outbox.deliver("anchor", BATCHES, map(self._delivery, batches))
            result.revoked = self._send_revocations()
            return result

    def _build_batch(self, *, force: bool) -> AnchorBatch | None:
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
                                    m.valid_until or 0, index, m.salt).hash(self.chain.tree_hash))
        tree = MerkleTree(leaves, self.chain.tree_hash)
        try:
            return self._write_batch(rows, leaves, tree)
        except (_Outrun, IntegrityError):
            log.warning("materials were batched by another instance meanwhile; this batch is dropped")
            return None

    def _write_batch(self, rows, leaves: list[bytes], tree: MerkleTree) -> AnchorBatch:
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
            return batch

    def _delivery(self, batch: AnchorBatch) -> Delivery:
        ledger, notary = self.chain.ledger, self.chain.notary
        return Delivery([batch.id], lambda: ledger.send_anchor(notary, batch.root, batch.leaf_count),
                        lambda receipt: self._confirm(batch, receipt), already=("RootAlreadyAnchored",))

    def _confirm(self, batch: AnchorBatch, receipt: Receipt | None) -> int:
        """Mark the batch CONFIRMED (block from its receipt) and its materials ANCHORED."""
        onchain = self.chain.ledger.anchor_of(batch.root)  # the anchoring time, and that it is there
        if onchain is None:
            return 0
        if receipt is None and not self._ours(onchain.anchorer):
            # Somebody else (an issuer of any category shares the root namespace) anchored this
            # root first, from the mempool: its anchor is no notary's, so our materials would
            # verify INVALID `not_notary`. Release them with fresh salts into a new batch.
            self._release_squatted(batch, onchain.anchorer)
            return 0
        values = {"state": ChainState.CONFIRMED.value, "anchored_at": onchain.anchored_at}
        if receipt is not None:
            values["block_number"] = receipt.block_number
        elif batch.block_number is None:
            # The chain already held the root (this transaction reverted RootAlreadyAnchored: an
            # earlier one, sent before a crash or by the instance this one took over from, was
            # mined): the proof names the block and transaction that anchored it.
            found = self.chain.ledger.anchoring(batch.root)
            if found is None:
                return 0
            values["block_number"], values["tx_hash"] = found
        with self.sessions.begin() as s:
            s.execute(update(AnchorBatch).where(AnchorBatch.id == batch.id).values(**values))
            n = s.execute(update(Material).where(Material.batch_id == batch.id,
                                                 Material.state == MaterialState.CONFIRMED.value)
                          .values(state=MaterialState.ANCHORED.value)).rowcount
        if self.on_anchored is not None:
            with self.sessions() as s:
                confirmed = list(s.scalars(select(Material.confirmed_at).where(Material.batch_id == batch.id)))
            now = datetime.now(timezone.utc)
            self.on_anchored(batch.leaf_count, [(now - (c if c.tzinfo else c.replace(tzinfo=timezone.utc)))
                                                .total_seconds() for c in confirmed if c is not None])
        return n

    def _ours(self, anchorer: str) -> bool:
        return anchorer.lower() in {r.address.lower() for r in self.chain.keys.rows("notary")} | {
            self.chain.notary.address.lower()}

    def _release_squatted(self, batch: AnchorBatch, anchorer: str) -> None:
        log.error("batch %d: root %s was anchored by %s, not by this service's notary (squatted); its materials "
                  "go into a new batch with fresh salts", batch.id, batch.root.hex(), anchorer)
        with self.sessions.begin() as s:
            ids = list(s.scalars(select(Material.id).where(Material.batch_id == batch.id)))
            s.execute(update(Material), [{"id": i, "batch_id": None, "leaf_index": None, "leaf": None, "proof": None,
                                          "salt": secrets.token_bytes(32)} for i in ids])
            s.execute(update(AnchorBatch).where(AnchorBatch.id == batch.id).values(state=SQUATTED))

    def _settle_open_batches(self) -> int:
        """Batches left open by a crash or a failed pass: a sent one is settled from its hash,
        a pending one is sent (or found on chain already)."""
        with self.sessions() as s:
            open_batches = list(s.scalars(select(AnchorBatch).where(
                AnchorBatch.state != ChainState.CONFIRMED.value).order_by(AnchorBatch.id)))
        done = 0
        for batch in open_batches:
            if batch.state == ChainState.SENT.value and batch.tx_hash:
                try:
                    done += self.outbox.settle("anchor", self._delivery(batch), batch.tx_hash)
                    continue
                except ChainTimeout:
                    if self.chain.client.request("eth_getTransactionByHash", [batch.tx_hash]) is not None:
                        raise  # still in a pool, or mined and not yet buried: wait on
                # No node holds the transaction any more (dropped from the pool, or on the side
                # of a fork that was given up): send the anchor again. Sending twice is safe: a
                # root the chain holds already counts as delivered.
                log.warning("batch %d: transaction %s is unknown to the node; anchoring again", batch.id, batch.tx_hash)
                self.chain.client.forget_nonce(self.chain.notary.address)
            done += self.outbox.deliver("anchor", BATCHES, [self._delivery(batch)])
        return done

    def backlog(self) -> tuple[int, float]:
        """Confirmed materials without a proof yet, and how long the oldest has waited."""
        return backlog(self.sessions, Material.state == MaterialState.CONFIRMED.value, Material.confirmed_at)

    def unsettled(self) -> int:
        """Batches not confirmed on chain and revocations not yet witnessed there."""
        with self.sessions() as s:
            return (s.scalar(select(func.count()).select_from(AnchorBatch)
                             .where(AnchorBatch.state != ChainState.CONFIRMED.value))
                    + s.scalar(select(func.count()).select_from(Material)
                               .where(Material.revocation_state == ChainState.PENDING.value)))

    def requeue_lost(self) -> int:
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
        ledger, notary = self.chain.ledger, self.chain.notary
        deliveries = []
        for root, items in by_root.items():
            ids = [r.id for r in items]
            todo = [r for r in items if not ledger.is_revoked(root, r.leaf_index)]
            if not todo:
                self._revoked(ids)  # the chain has them all already
                continue
            reason = "withdrawn" if all(r.revocation_reason == "withdrawn" for r in todo) else "revoked"
            indexes = sorted(r.leaf_index for r in todo)
            deliveries.append(Delivery(ids, partial(ledger.send_revoke_leaves, notary, root, indexes, reason),
                                       partial(self._revoked, ids), already=("LeafAlreadyRevoked",)))
        # Earlier deployments first: a failure there leaves the rows pending for the next pass.
        self._revoke_on_earlier_deployments(by_root, notary)
        self.outbox.deliver("revoke", None, deliveries)
        return sum(len(items) for items in by_root.values())

    def _revoke_on_earlier_deployments(self, by_root: dict, notary) -> None:
        """After an upgrade, a bundle made before it names the earlier deployment, where its root
        stays anchored: the revocation goes there too, so a verifier of the old bundle sees it."""
        for ledger in self.chain.earlier_ledgers():
            for root, items in by_root.items():
                if ledger.anchor_of(root) is None:
                    continue
                todo = sorted(r.leaf_index for r in items if not ledger.is_revoked(root, r.leaf_index))
                if todo:
                    try:
                        self.chain.client.wait(ledger.send_revoke_leaves(notary, root, todo, "withdrawn"))
                    except TransactionReverted as exc:
                        log.warning("revocation on earlier deployment %s refused: %s", ledger.deployment.address, exc)

    def _revoked(self, ids: list[int], _receipt: Receipt | None = None) -> int:
        with self.sessions.begin() as s:
            s.execute(update(Material).where(Material.id.in_(ids)).values(revocation_state=ChainState.CONFIRMED.value))
        return len(ids)
