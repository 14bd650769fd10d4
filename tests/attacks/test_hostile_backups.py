"""Attack: hand the operations team a backup that writes where it should not, or that says what
the attacker likes (issue 26, item 4); read a secret out of a backup."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

import pytest
from sqlalchemy import inspect

from chain.keys import load_or_create
from materials_api.platform.backup import MANIFEST, SIGNATURE, BackupError, backup
from materials_api.platform.restore import _copy_checked, restore
from materials_api.platform.config import Settings
from materials_api.platform.db import make_engine
from materials_api.platform.keys import keystore_passphrase
from materials_api.platform.storage import open_store
from tests.attacks.conftest import FORGED, deposit, keys_for


def _rewrite(backup_dir, change, signer=None) -> None:
    """Change the manifest (and sign it with `signer`, else drop the signature)."""
    from eth_utils import keccak

    from materials_api.platform import backup as b

    manifest = json.loads((backup_dir / MANIFEST).read_text())
    change(manifest)
    body = json.dumps(manifest, indent=1).encode()
    (backup_dir / MANIFEST).write_bytes(body)
    (backup_dir / SIGNATURE).unlink(missing_ok=True)
    if signer is not None:
        sig = signer.sign_hash(keccak(b.SIGNED + body))
        (backup_dir / SIGNATURE).write_text(json.dumps({"signer": signer.address, "signature": sig.to_hex()}))


def _entry(path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_hostile_backup_is_refused_and_writes_nothing(service, tmp_path, database_url):
    api, runtime = service
    keys = keys_for(runtime)
    deposit(api, runtime, keys, FORGED)
    made = tmp_path / "backup"
    backup(runtime.settings, runtime.engine, runtime.storage, made, signer=runtime.chain.governor)
    governor = runtime.chain.governor.address
    target = Settings(**{**runtime.settings.model_dump(), "home": tmp_path / "restored",
                         "database_url": f"sqlite:///{tmp_path / 'restored.db'}" if database_url.startswith("sqlite")
                         else None, "s3_bucket": f"r-{uuid.uuid4().hex[:12]}"})
    if target.database_url is None:
        pytest.skip("the path checks are the same on PostgreSQL; run once")
    engine = make_engine(target.db_url)
    outside = tmp_path / "escaped.txt"

    def attempt(name, change, *, signer=None, pin=governor, code):
        copy = tmp_path / name
        shutil.copytree(made, copy, symlinks=True)
        change_files = change(copy)
        _rewrite(copy, change_files, signer)
        with pytest.raises(BackupError) as refused:
            restore(target, engine, open_store(target), copy, governor=pin)
        assert refused.value.code == code, refused.value.message
        assert not outside.exists() and inspect(engine).get_table_names() == []
        assert not (target.home / "keys").exists()

    attacker = load_or_create(tmp_path / "attacker.eth")

    def escape(copy):  # a file the manifest places outside the home
        (copy / "home" / "x").write_text("owned")

        def change(m):
            m["files"]["home/../escaped.txt"] = _entry(copy / "home" / "x")
        return change

    def link(copy):  # a link to a file of the machine restoring it
        (copy / "home" / "keys" / "stolen.json").symlink_to("/etc/hostname")

        def change(m):
            m["files"]["home/keys/stolen.json"] = _entry(copy / "home" / "keys" / "stolen.json")
        return change

    def misnamed(copy):  # an object not named by its own hash, said to be a plain one
        obj = next(p for p in (copy / "objects").rglob("*") if p.is_file())
        (obj.parent / ("ab" * 32)).write_bytes(obj.read_bytes())

        def change(m):
            rel = obj.relative_to(copy).as_posix()
            entry = m["files"].pop(rel)
            entry.pop("sealed", None)  # a sealed object's name is bound by its seal (test_sealed_store.py)
            m["files"][rel.rsplit("/", 1)[0] + "/" + "ab" * 32] = entry
        return change

    def secrets_dir(copy):  # a file into the home's secrets (the keystore passphrase's place)
        (copy / "home" / "p").write_text("attacker's passphrase")

        def change(m):
            m["files"]["home/secrets/keystore-passphrase"] = _entry(copy / "home" / "p")
        return change

    # Signed by the attacker, or by nobody: refused for that, before any path is looked at.
    attempt("signed-by-attacker", lambda copy: lambda m: None, signer=attacker, code="backup_signer")
    attempt("unsigned", lambda copy: lambda m: None, code="backup_unsigned")
    # Even an operator who accepts an unsigned backup (pin None) gets no path a backup never writes.
    attempt("escape", escape, pin=None, code="backup_path")
    attempt("link", link, pin=None, code="backup_path")
    attempt("misnamed", misnamed, pin=None, code="backup_path")
    attempt("secrets", secrets_dir, pin=None, code="backup_path")
    # Bytes that change after they were checked are not written where they would be used.
    victim = tmp_path / "victim"
    victim.write_bytes(b"checked bytes")
    with pytest.raises(BackupError):
        _copy_checked(victim, tmp_path / "restored-file", hashlib.sha256(b"other bytes").hexdigest())
    assert not (tmp_path / "restored-file").exists()
    # The genuine backup, pinned to the governor, restores.
    done = restore(target, engine, open_store(target), made, governor=governor)
    assert done.objects >= 1
    engine.dispose()


def test_a_backup_carries_no_secret_in_plaintext(service, tmp_path):
    api, runtime = service
    keys = keys_for(runtime)
    deposit(api, runtime, keys, FORGED)
    api_key = "qk_" + os.urandom(4).hex()
    runtime.settings.governor_key_file.write_text(api_key + "\n")  # what `qiyema init` leaves in the home
    made = tmp_path / "backup"
    backup(runtime.settings, runtime.engine, runtime.storage, made, signer=runtime.chain.governor)
    secrets = [api_key.encode(), keystore_passphrase(runtime.settings)]
    for path in made.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path
    manifest = json.loads((made / MANIFEST).read_text())
    assert "home/governor.key" not in manifest["files"]
    assert not any(f.startswith("home/secrets/") for f in manifest["files"])
