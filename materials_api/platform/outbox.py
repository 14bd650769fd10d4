"""The chain outbox: how every write the chain witnesses goes PENDING → SENT → CONFIRMED.

A domain writes its row ahead in the database (PENDING), then hands the outbox `Delivery`s: one
transaction each, naming the rows it witnesses, how to send it through the ledger and how to
mark those rows once the chain has it. The outbox owns what is the same for every kind:

- the in-flight window: `in_flight` transactions stay out while the next is sent, and only then
  is the oldest receipt awaited, so one block carries several writes and throughput does not fall with the block
  period;
- SENT: the transaction hash is written before anything waits on it, so a crash between send
  and receipt is settled from that hash on restart;
- a send the chain refuses because it already holds the write (another instance, a retry
  after a crash) counts as delivered, not as a failure;
- the receipt from the wait is the one the domain marks its rows from: no second read.

Re-queueing after a chain reset (rows the database holds as CONFIRMED that the chain does not
know) is each kind's `requeue_lost` (enterprises, records, anchor batches), run by that kind's
background loop on its first pass; the rows then go through here again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from chain.client import ChainClient, Receipt
from chain.errors import TransactionReverted
from materials_api.platform.failpoints import failpoint
from materials_api.platform.models import ChainState


@dataclass
class Delivery:
    """One transaction: the rows it witnesses, how to send it, how to mark them once on chain.
    `confirm` gets the receipt, or None when the chain already held the write."""

    ids: list
    send: Callable[[], str]
    confirm: Callable[[Receipt | None], int]
    already: tuple[str, ...] = ()  # revert errors meaning "the chain holds this already"
    # A send the chain refuses for another reason: with this set, it is told and the others go
    # on (the rows stay as they are, for the next pass); without it, the refusal is raised.
    refused: Callable[[TransactionReverted], None] | None = None


@dataclass(frozen=True)
class Table:
    """Where a kind keeps its rows' chain state: the model, its state column, its hash column."""

    model: type
    state: str = "chain_state"
    tx_hash: str | None = "tx_hash"


@dataclass
class Outbox:
    sessions: sessionmaker
    client: ChainClient
    in_flight: int = 8

    def deliver(self, name: str, table: Table | None, deliveries: Iterable[Delivery]) -> int:
        """Send every delivery, keeping `in_flight` unconfirmed while the next one is prepared and
        sent (then the oldest is settled), and confirm each from its own receipt; returns what the
        confirmations counted. `deliveries` may be a generator: it is read as sending goes on.
        `name` prefixes the crash-test failpoints."""
        done = 0
        window: deque[tuple[Delivery, str | None]] = deque()
        for delivery in deliveries:
            try:
                tx_hash = self._send(name, table, delivery)
            except TransactionReverted as exc:
                if delivery.refused is None:
                    raise
                delivery.refused(exc)
                continue
            window.append((delivery, tx_hash))
            while len(window) > self.in_flight:
                done += self._settle(name, [window.popleft()])
        return done + self._settle(name, list(window))

    def settle(self, name: str, delivery: Delivery, tx_hash: str | None) -> int:
        """Finish a delivery sent before (its hash read back from the database after a restart)."""
        return self._settle(name, [(delivery, tx_hash)])

    def _send(self, name: str, table: Table | None, delivery: Delivery) -> str | None:
        try:
            tx_hash = delivery.send()
        except TransactionReverted as exc:
            if exc.error not in delivery.already:
                raise
            return None  # the chain has it: nothing to wait for
        failpoint(f"{name}.after_send")
        if table is not None:
            self._mark(table, delivery.ids, ChainState.SENT, tx_hash)
        return tx_hash

    def _settle(self, name: str, window: list[tuple[Delivery, str | None]]) -> int:
        done = 0
        for delivery, tx_hash in window:
            receipt = None
            if tx_hash is not None:
                try:
                    receipt = self.client.wait(tx_hash)
                except TransactionReverted as exc:
                    if exc.error not in delivery.already:
                        raise
                failpoint(f"{name}.after_receipt")
            done += delivery.confirm(receipt)
        return done

    def _mark(self, table: Table, ids: list, state: ChainState, tx_hash: str | None) -> None:
        values = {table.state: state.value}
        if table.tx_hash:
            values[table.tx_hash] = tx_hash
        with self.sessions.begin() as s:
            s.execute(update(table.model).where(table.model.id.in_(ids)).values(**values)
                      .execution_options(synchronize_session=False))


def backlog(sessions: sessionmaker, waiting, since) -> tuple[int, float]:
    """How many rows match `waiting` (a condition) and how long the oldest (by `since`) has waited."""
    with sessions() as s:
        n, oldest = s.execute(select(func.count(), func.min(since)).where(waiting)).one()
    if not n or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=timezone.utc)
    return n, max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())
