"""Enterprise registration and status: database first (the record), then the chain (the witness).

Every write is idempotent and survives a crash at any point: the row is written ahead as
PENDING, the transaction hash is kept as SENT, and `reconcile` compares the database with the
chain's own view and sends only what the chain lacks, so nothing is registered twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from chain.client import Receipt
from chain.errors import ChainError, TransactionReverted
from chain.ledger import EnterpriseStatus as ChainStatus
from codes.uscc import chain_key, validate
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.models import UNWITNESSED, ChainState
from materials_api.platform.outbox import Delivery, Outbox, Table, backlog
from materials_api.platform.runtime import ChainContext
from materials_api.registry.models import Enterprise, EnterpriseEvent, EnterpriseStatus

log = logging.getLogger("qiyema.enterprises")

ENTERPRISES = Table(Enterprise)

TO_CHAIN = {
    EnterpriseStatus.ACTIVE.value: ChainStatus.ACTIVE,
    EnterpriseStatus.ABNORMAL.value: ChainStatus.ABNORMAL,
    EnterpriseStatus.REVOKED.value: ChainStatus.REVOKED,
    EnterpriseStatus.DEREGISTERED.value: ChainStatus.DEREGISTERED,
}
FROM_CHAIN = {v: k for k, v in TO_CHAIN.items()}


class EnterpriseError(ServiceError):
    pass


@dataclass(frozen=True)
class ReconcileResult:
    registered: int = 0
    status_changes: int = 0
    already_witnessed: int = 0
    failed: int = 0


class EnterpriseService:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, batch_size: int = 500,
                 outbox: Outbox | None = None):
        self.sessions = sessions
        self.chain = chain
        self.batch_size = batch_size
        self.outbox = outbox or Outbox(sessions, chain.client)

    # --- reads ------------------------------------------------------------------------------
    def get(self, session: Session, uscc: str) -> Enterprise:
        code = validate(uscc)
        enterprise = session.scalar(select(Enterprise).where(Enterprise.uscc == code))
        if enterprise is None:
            raise EnterpriseError(Kind.NOT_FOUND, "enterprise_not_found", f"no enterprise with USCC {code}")
        return enterprise

    # --- writes -----------------------------------------------------------------------------
    def register(self, uscc: str, name: str, actor_key_id: int | None = None) -> Enterprise:
        code = validate(uscc)
        name = name.strip()
        if not name:
            raise EnterpriseError(Kind.INVALID, "name_empty", "企业名称不能为空 / the name must not be empty")
        with self.sessions.begin() as s:
            if s.scalar(select(Enterprise.id).where(Enterprise.uscc == code)) is not None:
                raise EnterpriseError(Kind.CONFLICT, "enterprise_exists", f"{code} is already registered")
            enterprise = Enterprise(uscc=code, name=name, uscc_key=chain_key(code),
                                    status=EnterpriseStatus.ACTIVE.value, chain_state=ChainState.PENDING.value)
            s.add(enterprise)
            try:
                s.flush()
            except IntegrityError:
                raise EnterpriseError(Kind.CONFLICT, "enterprise_exists", f"{code} is already registered") from None
            s.add(EnterpriseEvent(enterprise_id=enterprise.id, kind="registered", to_status=enterprise.status,
                                  actor_key_id=actor_key_id))
            enterprise_id = enterprise.id
        self._witness([enterprise_id])
        with self.sessions() as s:
            return s.get(Enterprise, enterprise_id)

    def set_status(self, uscc: str, status: EnterpriseStatus, reason: str | None,
                   actor_key_id: int | None = None) -> Enterprise:
        with self.sessions.begin() as s:
            enterprise = self.get(s, uscc)
            if enterprise.status == EnterpriseStatus.DEREGISTERED.value:
                raise EnterpriseError(Kind.CONFLICT, "enterprise_deregistered",
                                      f"{enterprise.uscc} is deregistered (注销); its status cannot change")
            if enterprise.status == status.value:
                raise EnterpriseError(Kind.CONFLICT, "status_unchanged", f"{enterprise.uscc} is already {status.value}")
            s.add(EnterpriseEvent(enterprise_id=enterprise.id, kind="status_changed", from_status=enterprise.status,
                                  to_status=status.value, reason=reason, actor_key_id=actor_key_id))
            enterprise.status = status.value
            enterprise.chain_state = ChainState.PENDING.value
            enterprise_id = enterprise.id
        self._witness([enterprise_id])
        with self.sessions() as s:
            return s.get(Enterprise, enterprise_id)

    def _witness(self, ids: list[int]) -> None:
        """Try to bring the chain in line now; on chain trouble leave the rows for the reconciler."""
        try:
            self.reconcile(ids)
        except ChainError as exc:
            log.warning("chain write deferred for %d enterprise(s): %s", len(ids), exc)

    # --- reconciliation ---------------------------------------------------------------------------
    def pending_ids(self, limit: int = 100_000, older_than: float = 0.0) -> list[int]:
        """Enterprises the chain does not yet witness, untouched for `older_than` seconds
        (so the reconciler leaves a request's own fresh row to that request)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)
        q = select(Enterprise.id).where(Enterprise.chain_state.in_(UNWITNESSED))
        if older_than:
            q = q.where(Enterprise.updated_at <= cutoff)
        with self.sessions() as s:
            return list(s.scalars(q.order_by(Enterprise.id).limit(limit)))

    def backlog(self) -> tuple[int, float]:
        """Enterprises the chain does not witness yet, and how long the oldest has waited."""
        return backlog(self.sessions, Enterprise.chain_state.in_(UNWITNESSED), Enterprise.updated_at)

    def requeue_lost(self) -> int:
        """If the chain witnesses fewer enterprises than the database says it confirmed (a new
        deployment, a reset, or a node that lost its latest state), queue them all again; the
        reconciler then sends only what the chain lacks. Returns how many were queued."""
        with self.sessions() as s:
            confirmed = s.scalar(select(func.count()).select_from(Enterprise)
                                 .where(Enterprise.chain_state == ChainState.CONFIRMED.value))
        if not confirmed or self.chain.ledger.enterprise_count() >= confirmed:
            return 0
        with self.sessions.begin() as s:
            n = s.execute(update(Enterprise).where(Enterprise.chain_state == ChainState.CONFIRMED.value)
                          .values(chain_state=ChainState.PENDING.value)).rowcount
        log.warning("the chain lost state (contract %s): %d enterprises queued for re-registration",
                    self.chain.deployment.address, n)
        return n

    def reconcile(self, ids: list[int] | None = None) -> ReconcileResult:
        """Make the chain witness exactly what the database holds for these enterprises
        (default: every one not yet confirmed). Safe to run any number of times, at any point."""
        ids = self.pending_ids() if ids is None else ids
        totals = ReconcileResult()
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            try:
                r = self._reconcile_chunk(chunk)
            except TransactionReverted as exc:
                # Another writer (the reconciler thread, another instance) got there between our
                # read and our send; the chain's view has changed, so read it again.
                if exc.error not in ("EnterpriseAlreadyRegistered", "InvalidStatusChange"):
                    raise
                r = self._reconcile_chunk(chunk)
            totals = ReconcileResult(*(a + b for a, b in zip(vars(totals).values(), vars(r).values())))
        return totals

    def _reconcile_chunk(self, ids: list[int]) -> ReconcileResult:
        ledger, registrar = self.chain.ledger, self.chain.registrar
        with self.sessions() as s:
            rows = list(s.execute(select(Enterprise.id, Enterprise.uscc_key, Enterprise.status)
                                  .where(Enterprise.id.in_(ids))))
        if not rows:
            return ReconcileResult()
        onchain = dict(zip((r.id for r in rows), ledger.statuses([r.uscc_key for r in rows])))
        missing = [r for r in rows if onchain[r.id] == ChainStatus.NONE]
        if missing:
            keys = [r.uscc_key for r in missing]
            send = (partial(ledger.send_register, registrar, keys[0]) if len(keys) == 1
                    else partial(ledger.send_register_batch, registrar, keys))
            self.outbox.deliver("register", ENTERPRISES, [
                Delivery([r.id for r in missing], send, partial(self._registered, missing, onchain))])
        failed: list[int] = []
        changes = []
        for r in rows:
            want = TO_CHAIN[r.status]
            if onchain[r.id] == want:
                continue
            if onchain[r.id] == ChainStatus.DEREGISTERED:
                # The chain says 注销, which is final: the database must follow the witness.
                log.error("enterprise %d is deregistered on chain but %s in the database", r.id, r.status)
                self._mark([r.id], status=EnterpriseStatus.DEREGISTERED.value)
                failed.append(r.id)
                continue
            changes.append(Delivery([r.id], partial(ledger.send_set_status, registrar, r.uscc_key, want, "registrar"),
                                    partial(self._status_set, r.id, want, onchain),
                                    refused=partial(self._status_refused, r.id, failed)))
        changed = self.outbox.deliver("status", ENTERPRISES, changes)
        by_status: dict[str, list[int]] = {}
        for r in rows:
            if onchain[r.id] == TO_CHAIN[r.status]:
                by_status.setdefault(r.status, []).append(r.id)
        for status, done in by_status.items():
            self._mark(done, chain_state=ChainState.CONFIRMED.value, chain_status=status)
        return ReconcileResult(len(missing), changed, len(rows) - len(missing) - changed - len(failed), len(failed))

    def _registered(self, rows: list, onchain: dict, receipt: Receipt | None) -> int:
        self._mark([r.id for r in rows], chain_status=EnterpriseStatus.ACTIVE.value, block_number=receipt.block_number)
        onchain.update((r.id, ChainStatus.ACTIVE) for r in rows)
        return len(rows)

    def _status_set(self, enterprise_id: int, status: ChainStatus, onchain: dict, receipt: Receipt | None) -> int:
        self._mark([enterprise_id], block_number=receipt.block_number)
        onchain[enterprise_id] = status
        return 1

    @staticmethod
    def _status_refused(enterprise_id: int, failed: list[int], exc: TransactionReverted) -> None:
        log.error("status change of enterprise %d refused on chain: %s", enterprise_id, exc)
        failed.append(enterprise_id)

    def _mark(self, ids: list[int], **values) -> None:
        with self.sessions.begin() as s:
            s.execute(update(Enterprise).where(Enterprise.id.in_(ids)).values(**values))
