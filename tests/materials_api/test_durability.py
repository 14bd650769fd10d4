"""An answer that says "stored" survives a power cut (issue 26, item 10): SQLite commits with
`synchronous=FULL`, and every rename that makes state (an object, a keystore, the deployment
record, the trust list, a backup) is followed by an fsync of the folder holding the new name."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from chain import durable


def test_sqlite_commits_are_on_disk_when_they_return(runtime):
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's durability is its server's fsync setting")
    with runtime.engine.connect() as c:
        assert c.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


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
