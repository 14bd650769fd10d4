"""An answer that says "stored" survives a power cut (issue 26, item 10): every SQLite commit
returns after a (group) fsync of its write-ahead log, and every rename that makes state (an object, a keystore, the deployment
record, the trust list, a backup) is followed by an fsync of the folder holding the new name."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from chain import durable


def test_sqlite_commits_are_on_disk_when_they_return(runtime, monkeypatch):
    """Every commit returns only after an fsync of the write-ahead log that holds it (a group
    fsync: one serves the commits that arrived meanwhile)."""
    import os

    from materials_api.platform import db

    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's durability is its server's fsync setting")
    synced = []
    real = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(db.os, "fsync", recording)
    with runtime.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    for n in range(3):
        with runtime.engine.begin() as c:
            c.execute(text("CREATE TABLE IF NOT EXISTS durable_probe (n INTEGER)"))
            c.execute(text("INSERT INTO durable_probe VALUES (:n)"), {"n": n})
        assert synced and synced[-1].endswith("-wal"), synced  # this commit's log, synced before it returned
    assert len(synced) >= 3


@pytest.fixture
def synced(monkeypatch):
    """The folders fsynced, as the real fsync_dir does them (it still runs)."""
    seen = []
    real = durable.fsync_dir

    def recording(path):
        seen.append(str(path))
        real(path)

    import chain.keystore
    import materials_api.platform.storage

    for module in (durable, chain.keystore, materials_api.platform.storage):
        monkeypatch.setattr(module, "fsync_dir", recording)
    return seen


def test_an_object_and_a_key_are_durable_names(tmp_path, synced):
    from chain.keystore import FileKeyStore
    from materials_api.platform.storage import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    spooled = tmp_path / "spooled"
    spooled.write_bytes(b"%PDF-1.7 licence")
    digest = hashlib.sha256(b"%PDF-1.7 licence").hexdigest()
    store.put_file("e-1", digest, spooled, "application/pdf")
    folder = tmp_path / "objects" / "e-1" / digest[:2]
    assert str(folder) in synced and str(folder.parent) in synced  # the name, and its new folder's name

    keys = FileKeyStore(tmp_path / "keys", b"pass", scrypt_n=2)
    keys.create("notary")
    assert str(tmp_path / "keys") in synced
    durable.write_atomic(tmp_path / "trust-list.json", b"{}")
    assert (tmp_path / "trust-list.json").read_bytes() == b"{}" and str(tmp_path) in synced
    assert not list(tmp_path.glob(".trust-list.json.*"))  # no temporary left behind


def test_uploads_a_dead_process_left_in_the_spool_are_swept_and_live_ones_kept(tmp_path):
    import os
    import time

    from materials_api.platform.storage import sweep_spool

    spool = tmp_path / "spool"
    spool.mkdir()
    dead, live, other = spool / "upload-dead", spool / "upload-live", spool / "keep.txt"
    for path in (dead, live, other):
        path.write_bytes(b"partial upload")
    hours_ago = time.time() - 7 * 3600
    os.utime(dead, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    assert sweep_spool(spool, 6 * 3600) == 1
    assert not dead.exists() and live.exists() and other.exists()


def test_commits_at_once_share_one_fsync_and_none_returns_before_its_own(tmp_path, monkeypatch):
    import threading
    import time

    from materials_api.platform import db

    wal = tmp_path / "q.db-wal"
    wal.write_bytes(b"frames")
    barrier = db.WalBarrier(wal)
    started: list[float] = []

    def slow_fsync(fd):
        started.append(time.monotonic())
        time.sleep(0.05)  # a slow disk

    monkeypatch.setattr(db.os, "fsync", slow_fsync)
    returned: dict[int, tuple[float, float]] = {}

    def commit(i):
        asked = time.monotonic()
        barrier.wait()
        returned[i] = (asked, time.monotonic())

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == 8 and len(started) <= 3  # grouped: not one fsync a commit
    for asked, done in returned.values():  # each waited for an fsync that began after it asked
        assert any(asked <= s and s + 0.05 <= done + 1e-3 for s in started)
