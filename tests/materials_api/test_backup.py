"""Backups on both databases (SQLite's online backup, pg_dump/pg_restore) and both object stores
(a local folder, MinIO): what is restored is row for row, byte for byte what was backed up; a
damaged backup or an occupied target is refused before anything is written."""

import hashlib
import json
import uuid

import pytest
from sqlalchemy import func, inspect, select, text

from materials_api.bank.models import Material
from materials_api.platform.backup import MANIFEST, BackupError, backup
from materials_api.platform.restore import read_manifest, restore
from materials_api.platform.config import Settings
from materials_api.platform.db import make_engine
from materials_api.platform.runtime import Runtime
from materials_api.platform.storage import open_store
from tests.conftest import postgres_database
from tests.materials_api.test_materials import PDF, anchor, bank, settings, upload  # noqa: F401 - fixtures


@pytest.fixture
def empty_database(database_url, tmp_path):
    """A second, empty database of the same kind as the service's."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'qiyema.db'}"
        return
    with postgres_database() as url:
        yield url


def _target(settings: Settings, tmp_path, database_url: str) -> Settings:
    # The operator gives the restored service the keystore's passphrase: it is never in a backup.
    return Settings(**{**settings.model_dump(), "home": tmp_path / "restored", "database_url": database_url,
                       "s3_bucket": f"r-{uuid.uuid4().hex[:12]}",
                       "keystore_passphrase_file": settings.secrets_dir / "keystore-passphrase"})


def _rows(engine) -> dict[str, list]:
    with engine.connect() as c:
        return {t: sorted(map(tuple, c.execute(text(f'SELECT * FROM "{t}"'))), key=repr)
                for t in sorted(inspect(engine).get_table_names())}


def test_what_is_restored_is_what_was_backed_up(bank, keys, runtime, settings, evm, tmp_path, empty_database):
    ids = []
    for n in range(3):
        m = upload(bank, keys["enterprise"], content=PDF + str(n).encode()).json()
        ids.append(m["id"])
    for i in ids[:2]:
        assert bank.post(f"/api/v1/materials/{i}/confirm", headers={"Authorization": keys["enterprise"]}).status_code == 200
    assert anchor(bank).anchored == 2
    summary = backup(settings, runtime.engine, runtime.storage, tmp_path / "backup", signer=runtime.chain.governor)
    assert (summary.objects, summary.database) == (3, runtime.engine.dialect.name)
    manifest = read_manifest(tmp_path / "backup", governor=runtime.chain.governor.address)
    assert {f for f in manifest["files"] if f.startswith("home/keys/")} >= {"home/keys/governor.json",
                                                                           "home/keys/notary.json"}
    assert not [f for f in manifest["files"] if f.startswith("home/secrets/")]  # the passphrase stays behind
    assert "home/governor.key" not in manifest["files"]  # nor the governor's API key (plaintext)

    target = _target(settings, tmp_path, empty_database)
    engine = make_engine(target.db_url)
    done = restore(target, engine, open_store(target), tmp_path / "backup", governor=runtime.chain.governor.address)
    assert (done.objects, done.database) == (3, summary.database)
    assert _rows(engine) == _rows(runtime.engine)
    for name in ("governor.json", "registrar.json", "notary.json"):
        assert (target.keys_dir / name).read_bytes() == (settings.keys_dir / name).read_bytes()
    restored = Runtime.open(target, client=evm)  # the same chain: the same deployment, nothing to re-send
    try:
        assert restored.chain.deployment == runtime.chain.deployment
        with restored.sessions() as s:
            for m in s.scalars(select(Material)):
                content = b"".join(restored.storage.open(_account(s, m), m.sha256))
                assert hashlib.sha256(content).hexdigest() == m.sha256
            assert s.scalar(select(func.count()).select_from(Material)) == 3
    finally:
        restored.close()
        engine.dispose()


def _account(session, material) -> str:
    from materials_api.bank.materials import account_of
    from materials_api.registry.models import Enterprise

    return account_of(session.get(Enterprise, material.enterprise_id))


def test_a_damaged_backup_is_refused_before_anything_is_written(bank, keys, runtime, settings, tmp_path,
                                                                empty_database):
    upload(bank, keys["enterprise"])
    backup(settings, runtime.engine, runtime.storage, tmp_path / "backup", signer=runtime.chain.governor)
    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    victim = tmp_path / "backup" / next(f for f in manifest["files"] if f.startswith("objects/"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped on the backup medium
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))

    target = _target(settings, tmp_path, empty_database)
    engine = make_engine(target.db_url)
    with pytest.raises(BackupError) as refused:
        restore(target, engine, open_store(target), tmp_path / "backup", governor=runtime.chain.governor.address)
    assert refused.value.code == "backup_damaged" and victim.name in refused.value.message
    assert inspect(engine).get_table_names() == []  # nothing was written
    assert not target.keys_dir.exists()
    engine.dispose()


def test_an_occupied_target_and_an_occupied_destination_are_refused(runtime, settings, tmp_path, empty_database):
    backup(settings, runtime.engine, runtime.storage, tmp_path / "backup", signer=runtime.chain.governor)
    with pytest.raises(BackupError) as exists:
        backup(settings, runtime.engine, runtime.storage, tmp_path / "backup", signer=runtime.chain.governor)
    assert exists.value.code == "backup_exists"
    # Restoring over the running service's own home and database: refused, nothing changed.
    before = _rows(runtime.engine)
    with pytest.raises(BackupError) as occupied:
        restore(settings, runtime.engine, runtime.storage, tmp_path / "backup", governor=runtime.chain.governor.address)
    assert occupied.value.code == "home_not_empty"
    assert _rows(runtime.engine) == before
    # An empty home but a database that already holds tables: refused too.
    target = _target(settings, tmp_path, settings.db_url)
    with pytest.raises(BackupError) as tables:
        restore(target, runtime.engine, open_store(target), tmp_path / "backup", governor=runtime.chain.governor.address)
    assert tables.value.code == "database_not_empty"
    with pytest.raises(BackupError) as nothing:
        read_manifest(tmp_path, governor=runtime.chain.governor.address)
    assert nothing.value.code == "backup_missing"
