"""Restoring a backup (platform/backup.py writes them), reading it as hostile: the governor's
signature over the manifest checked against an address the operator gives, every path one a
backup writes (no `..`, no absolute path, nothing outside the home, no link, an object named by its
own hash, nothing into the home's secrets), every file hashed before anything is written and again
as it is copied. The database is written last, so a restore that stops half-way is run again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from eth_keys.datatypes import Signature
from eth_utils import keccak, to_checksum_address
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

from chain.durable import fsync_dir
from materials_api.platform.backup import (FORMAT, HOME, MANIFEST, NODE_STATE, NOT_HOME_FILES, OBJECTS, PGDUMP_FILE,
                                           RESTORING, SIGNATURE, SIGNED, SQLITE_FILE, BackupError, Progress,
                                           pg_env, pg_tool, run_pg, sha256_file)
from materials_api.platform.config import Settings
from materials_api.platform.sealed_store import SealedStore
from materials_api.platform.storage import CHUNK, ObjectStore

_OBJECT = re.compile(r"^objects/([a-z0-9][a-z0-9-]{0,62})/([0-9a-f]{64})$")
_SEGMENT = re.compile(r"^[^/\\\x00]+$")


@dataclass
class RestoreSummary:
    backup_created_at: str
    database: str
    objects: int = 0
    files: int = 0
    node_state: str = "none in the backup"
    deployments: dict[int, dict] = field(default_factory=dict)  # chain id -> record, as backed up


def manifest_signer(src: Path) -> str | None:
    """The address that signed the backup's manifest, or None (unsigned, or not a signature)."""
    try:
        body = (Path(src) / MANIFEST).read_bytes()
        sig = json.loads((Path(src) / SIGNATURE).read_text())
        signature = Signature(bytes.fromhex(str(sig["signature"]).removeprefix("0x")))
        return signature.recover_public_key_from_msg_hash(keccak(SIGNED + body)).to_checksum_address()
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_manifest(src: Path, progress: Progress | None = None, *, governor: str | None) -> dict:
    """The backup's manifest, after checking who signed it (`governor`, an address the operator
    gives; None: the operator accepts an unsigned backup, said loudly by the caller), that every
    path in it is one a backup writes, and that every file it lists is there, whole."""
    src = Path(src)
    try:
        body = (src / MANIFEST).read_bytes()
        manifest = json.loads(body)
    except FileNotFoundError:
        raise BackupError("backup_missing", f"{src} is not a backup (no {MANIFEST})") from None
    except (ValueError, OSError) as exc:
        raise BackupError("backup_damaged", f"{src / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("backup_format", f"{src} is not a {FORMAT} backup (format "
                                           f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    if governor is not None:
        signer = manifest_signer(src)
        if signer is None:
            raise BackupError("backup_unsigned", f"{src} carries no valid governor signature ({SIGNATURE}): "
                                                 "nobody vouches for its manifest")
        if signer != to_checksum_address(governor):
            raise BackupError("backup_signer", f"{src} was signed by {signer}, not by the governor {governor}: "
                                               "refused (a backup made elsewhere, or altered)")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BackupError("backup_damaged", f"{src / MANIFEST} lists no files")
    root = src.resolve()
    for n, (rel, meta) in enumerate(files.items(), 1):
        _check_path(rel, meta)
        path = src / rel
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise BackupError("backup_path", f"{rel} is a link: a backup holds files only")
        if not path.is_file():
            raise BackupError("backup_damaged", f"{rel} is missing from the backup")
        if path.stat().st_size != meta["size"] or sha256_file(path) != meta["sha256"]:
            raise BackupError("backup_damaged", f"{rel} does not match the manifest (damaged backup)")
        if progress and n % 1000 == 0:
            progress("checked", n)
    return manifest


def _check_path(rel, meta) -> None:
    """A path a backup writes, and nothing else: the database, the node's state, an object named
    by its own hash, or a home file that stays inside the home."""
    if not isinstance(meta, dict) or not isinstance(meta.get("size"), int) or \
            not re.fullmatch(r"[0-9a-f]{64}", str(meta.get("sha256", ""))):
        raise BackupError("backup_damaged", f"the manifest's entry for {str(rel)[:200]!r} is malformed")
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise BackupError("backup_path", f"{str(rel)[:200]!r} is not a path a backup writes (refused: it could "
                                         "reach outside the home)")
    if rel in (SQLITE_FILE, PGDUMP_FILE, NODE_STATE):
        return
    if parts[0] == OBJECTS:
        found = _OBJECT.match(rel)
        # A sealed object (encrypted at rest) is named by its plaintext's hash: the manifest,
        # signed by the governor, says which; its bytes are checked against the manifest's hash.
        if found is None or (meta.get("sealed") is not True and found.group(2) != meta["sha256"]):
            raise BackupError("backup_path", f"{rel[:200]!r} is not an object named by its own hash")
        return
    if parts[0] == HOME and len(parts) > 1 and parts[1] not in NOT_HOME_FILES:
        return
    raise BackupError("backup_path", f"{rel[:200]!r} is not a path a backup writes")


def _copy_checked(source: Path, target: Path, sha256: str) -> None:
    """Copy `source` to `target` through a temporary file, hashing as it goes: bytes that are not
    the ones the manifest names are never written where they would be used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.restore-")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != sha256:
            raise BackupError("backup_damaged", f"{source.name} changed after it was checked: not restored")
        shutil.copystat(source, tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _restoring_marker(settings: Settings) -> Path:
    return settings.home / RESTORING


def _check_target(settings: Settings, engine: Engine, manifest: dict, src: Path) -> None:
    marker = _restoring_marker(settings)
    if marker.exists() and marker.read_text().strip() == manifest["created_at"]:
        return  # the same restore, stopped half-way: carry on
    dialect = engine.dialect.name
    if manifest["database"] != dialect:
        raise BackupError("database_mismatch",
                          f"the backup holds a {manifest['database']} database; this service uses {dialect}")
    held = [p.name for p in (settings.keys_dir, settings.deployments_dir, settings.governor_key_file)
            if p.exists() and (p.is_file() or any(p.iterdir()))]
    if held:
        raise BackupError("home_not_empty", f"{settings.home} already holds a service ({', '.join(held)}): "
                                            "restore into an empty home")
    tables = inspect(engine).get_table_names()
    if tables:
        raise BackupError("database_not_empty", f"the database already has {len(tables)} tables: restore needs "
                                                "an empty database")


def restore(settings: Settings, engine: Engine, store: ObjectStore, src: Path,
            progress: Progress | None = None, *, governor: str | None) -> RestoreSummary:
    """Write a checked backup, signed by `governor`, into an empty home and database. The
    caller then opens the service, whose reconciliation re-sends whatever the chain it finds
    lacks."""
    src = Path(src)
    manifest = read_manifest(src, progress, governor=governor)
    settings.home.mkdir(parents=True, exist_ok=True)
    _check_target(settings, engine, manifest, src)
    marker = _restoring_marker(settings)
    marker.write_text(manifest["created_at"] + "\n")
    summary = RestoreSummary(manifest["created_at"], manifest["database"])
    files = manifest["files"]

    home = settings.home.resolve()
    for rel, meta in files.items():
        if rel.startswith(HOME + "/"):
            target = settings.home / rel[len(HOME) + 1:]
            if not target.resolve().is_relative_to(home) or target.is_symlink():
                raise BackupError("backup_path", f"{rel[:200]!r} would be written outside {settings.home}")
            _copy_checked(src / rel, target, meta["sha256"])
            summary.files += 1
            if target.parent == settings.deployments_dir and target.suffix == ".json":
                record = json.loads(target.read_text())
                summary.deployments[int(record["chain_id"])] = record
    if settings.keys_dir.exists():
        os.chmod(settings.keys_dir, 0o700)

    if manifest.get("node_state"):
        if settings.chain_rpc_url:
            summary.node_state = "not used: this service runs on an external chain"
        else:
            _copy_checked(src / NODE_STATE, settings.node_dir / "anvil-state.json", files[NODE_STATE]["sha256"])
            summary.node_state = "restored"

    store = store.inner if isinstance(store, SealedStore) else store  # the objects go back as they were stored
    for rel in files:
        if rel.startswith(OBJECTS + "/"):
            _, account, sha256 = rel.split("/")
            if not store.exists(account, sha256):
                tmp = settings.home / f".restore-object-{sha256}"
                _copy_checked(src / rel, tmp, files[rel]["sha256"])
                store.put_file(account, sha256, tmp, "application/octet-stream")  # served type is in the database
                tmp.unlink(missing_ok=True)
            summary.objects += 1
            if progress and summary.objects % 1000 == 0:
                progress("objects", summary.objects)

    # The database last: once it is there, the home is a service.
    engine.dispose()  # no connection may hold the file being replaced
    if manifest["database"] == "sqlite":
        db_path = Path(make_url(settings.db_url).database)
        tmp = db_path.with_name(db_path.name + ".restore-tmp")
        _copy_checked(src / SQLITE_FILE, tmp, files[SQLITE_FILE]["sha256"])
        for suffix in ("-wal", "-shm"):
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, db_path)
        fsync_dir(db_path.parent)
    elif not inspect(engine).get_table_names():  # (a resumed restore may have done it already)
        dump = settings.home / ".restore-database.pgdump"
        _copy_checked(src / PGDUMP_FILE, dump, files[PGDUMP_FILE]["sha256"])
        try:
            run_pg([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                     f"--dbname={pg_env(settings.db_url)[1]}", str(dump)], settings.db_url)
        finally:
            dump.unlink(missing_ok=True)
    marker.unlink()
    return summary
