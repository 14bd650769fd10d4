"""What several service instances on one database share: transaction nonces and the lease on the
background worker. Both live in the database every instance already trusts, so there is no
extra coordinator to run, and both work the same on SQLite (instances on one machine) and on
PostgreSQL (instances anywhere)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.clock import SYSTEM, Clock
from materials_api.platform.models import ChainNonce, Lease

log = logging.getLogger("qiyema.coordination")


class _DatabaseSlot:
    def __init__(self, floor: int | None):
        self.floor = floor
        self.next: int | None = None

    def used(self, nonce: int) -> None:
        self.next = nonce + 1


class DatabaseNonceStore:
    """Nonces per (chain, account) under a row lock held while one transaction is signed and
    sent. The node's pending count is the truth once a transaction has reached every node; the
    stored floor covers the seconds before that (instances behind different nodes). A floor
    older than `memory` seconds is forgotten, so a transaction a node dropped cannot leave a
    gap that blocks the account for ever."""

    def __init__(self, sessions: sessionmaker, *, memory: float = 30.0, clock: Clock = SYSTEM):
        self.sessions = sessions
        self.memory = memory
        self.clock = clock

    @contextlib.contextmanager
    def reserve(self, chain: str, address: str):
        key = (ChainNonce.address == address, ChainNonce.chain == chain)
        lock = update(ChainNonce).where(*key).values(updated_at=ChainNonce.updated_at)
        with self.sessions() as s:
            # A write first: the row lock on PostgreSQL, the database write lock on SQLite.
            if s.execute(lock).rowcount == 0:  # the account's first transaction on this chain
                s.rollback()
                try:
                    s.add(ChainNonce(address=address, chain=chain, next_nonce=0, updated_at=0.0))
                    s.commit()
                except IntegrityError:  # another instance made the row meanwhile
                    s.rollback()
                s.execute(lock)
            row = s.execute(select(ChainNonce.next_nonce, ChainNonce.updated_at).where(*key)).one()
            fresh = self.clock.time() - row.updated_at < self.memory
            slot = _DatabaseSlot(row.next_nonce if fresh else None)
            try:
                yield slot
            finally:
                if slot.next is not None:
                    s.execute(update(ChainNonce).where(*key).values(next_nonce=slot.next, updated_at=self.clock.time()))
                s.commit()


    def forget(self, chain: str, address: str) -> None:
        with self.sessions.begin() as s:
            s.execute(update(ChainNonce).where(ChainNonce.address == address, ChainNonce.chain == chain)
                      .values(updated_at=0.0))


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    """One holder of `name` at a time. A thread renews the lease every ttl/3 seconds; when the
    holder dies its lease runs out after `ttl` seconds and another instance takes over. Expiry
    times are wall-clock seconds, so instance clocks must agree to well within `ttl` (NTP)."""

    def __init__(self, sessions: sessionmaker, name: str, *, ttl: float = 10.0, holder: str | None = None,
                 clock: Clock = SYSTEM):
        self.sessions = sessions
        self.clock = clock
        self.name = name
        self.ttl = ttl
        self.holder = holder or instance_id()
        self._valid_until = 0.0  # monotonic: this process's own view of its lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_leader = False

    @property
    def is_leader(self) -> bool:
        return self.clock.monotonic() < self._valid_until

    def try_acquire(self) -> bool:
        """Take or renew the lease if it is free, expired or ours; True if we hold it now."""
        started = self.clock.monotonic()
        now = self.clock.time()
        try:
            with self.sessions.begin() as s:
                if s.get(Lease, self.name) is None:
                    s.add(Lease(name=self.name, holder=self.holder, expires_at=now + self.ttl, acquired_at=now))
                    won = True
                else:
                    won = s.execute(
                        update(Lease).where(Lease.name == self.name,
                                            (Lease.holder == self.holder) | (Lease.expires_at < now))
                        .values(holder=self.holder, expires_at=now + self.ttl,
                                acquired_at=case((Lease.holder == self.holder, Lease.acquired_at), else_=now))
                        .execution_options(synchronize_session=False)).rowcount == 1
        except IntegrityError:  # another instance inserted the row first
            won = False
        except Exception as exc:  # noqa: BLE001 - a database outage: we no longer know, so we do not lead
            log.warning("lease %s: database unavailable: %s", self.name, exc)
            won = False
        # Leadership ends a margin before the database would let someone else in.
        self._valid_until = started + self.ttl * 0.8 if won else 0.0
        if won != self._was_leader:
            log.info("lease %s %s by %s", self.name, "acquired" if won else "lost", self.holder)
            self._was_leader = won
        return won

    def release(self) -> None:
        self._valid_until = 0.0
        try:
            with self.sessions.begin() as s:
                s.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
                          .values(expires_at=0.0))
        except Exception as exc:  # noqa: BLE001 - it will expire on its own
            log.warning("lease %s: could not release: %s", self.name, exc)

    def holder_now(self) -> tuple[str, float] | None:
        with self.sessions() as s:
            row = s.get(Lease, self.name)
            return (row.holder, row.expires_at) if row else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"qiyema-lease-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_acquire()
            self._stop.wait(self.ttl / 3)
