"""Database engine, sessions and migrations (Alembic, applied programmatically)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    pass


class WalBarrier:
    """Group commit for SQLite in WAL mode: a commit has written its frames to the `-wal` file
    when it returns; one fsync of that file then makes every commit written before it durable.
    Commits wait here (outside SQLite's write lock, so the next writer goes on meanwhile) and one
    fsync serves all who arrived while the one before ran — the durability of
    `synchronous=FULL`, which fsyncs inside the write lock once per commit, without serialising
    every writer behind the disk."""

    def __init__(self, wal_path: Path):
        self.wal_path = wal_path
        self._cond = threading.Condition()
        self._requested = self._synced = 0
        self._syncing = False

    def wait(self) -> None:
        with self._cond:
            self._requested += 1
            ticket = self._requested
            while self._synced < ticket:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing, target = True, self._requested
                self._cond.release()
                try:
                    self._fsync()
                finally:
                    self._cond.acquire()
                    self._syncing = False
                self._synced = max(self._synced, target)
                self._cond.notify_all()

    def _fsync(self) -> None:
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL (checkpointed and removed): the commit is in the database file, synced
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        connect_args: dict = {"check_same_thread": False, "timeout": 30}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            barrier = WalBarrier(Path(path + "-wal"))

            class DurableConnection(sqlite3.Connection):
                def commit(self):
                    super().commit()
                    barrier.wait()  # answered only once the commit survives a power cut

            connect_args["factory"] = DurableConnection
        engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL: SQLite itself syncs the WAL before each checkpoint and the database after
            # it; each commit is made durable by the group fsync above (DurableConnection), so
            # an answer that says "stored" survives a power cut.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    command.upgrade(alembic_config(url), "head")
