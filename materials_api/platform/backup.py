"""Backups that restore: one directory holding a consistent copy of what a service keeps.

What is copied, in this order, and why the order makes it consistent: the database first (one
snapshot: SQLite's online backup API, or `pg_dump`), then the objects, the home's files (keys,
deployments, the governor's API key) and last the managed chain node's state. Everything copied
after the snapshot is at worst *ahead* of the database, which is exactly the state a crash
leaves (write-ahead in the database, then store, then chain) and what reconciliation on start
repairs. In-flight uploads (the spool) are not copied: nothing in it was acknowledged.

A backup is written under a temporary name and renamed when complete, so a directory with a
manifest is a whole backup. The manifest lists every file with its size and SHA-256; `restore`
checks them all before it writes anything, refuses a home or database that already holds a
service, and writes the database last, so a restore that stops half-way is simply run again.
No domain knowledge here: re-sending what a reset chain lost is the caller's (`cli/backup.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url

from chain.errors import InputError
from materials_api.platform.config import Settings
from materials_api.platform.storage import CHUNK, ObjectStore

FORMAT = "qiyema-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PGDUMP_FILE = "database.pgdump"
OBJECTS = "objects"
HOME = "home"
NODE_STATE = "node/anvil-state.json"
RESTORING = ".restoring"  # in the home while a restore is under way: the backup it comes from
# Not the home's to copy as files: the database (snapshotted), the store (copied object by
# object), the spool (unacknowledged uploads), the node (its state is dumped from the node) and
# the counts of running processes (metrics).
# "secrets": the keystore's passphrase never travels with the keystores it opens.
_NOT_HOME_FILES = {"objects", "spool", "node", "metrics", "secrets", "qiyema.db", "qiyema.db-wal", "qiyema.db-shm",
                   "qiyema.db-journal", RESTORING}

Progress = Callable[[str, int], None]  # (what, how many so far)


class BackupError(InputError):
    """A backup that cannot be made or restored; nothing was changed."""


@dataclass
class BackupSummary:
    path: Path
    database: str
    objects: int = 0
    object_bytes: int = 0
    files: int = 0
    node_state: bool = False
    total_bytes: int = 0


@dataclass
class RestoreSummary:
    backup_created_at: str
    database: str
    objects: int = 0
    files: int = 0
    node_state: str = "none in the backup"
    deployments: dict[int, dict] = field(default_factory=dict)  # chain id -> record, as backed up


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_tree(root: Path) -> None:
    for dirpath, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# --- PostgreSQL through its own tools -----------------------------------------------------------
def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not candidates:
        raise BackupError("pg_tools_missing", f"{name} not found (install PostgreSQL's client tools)")
    return str(candidates[-1])


def _pg_env(url: str) -> tuple[dict, str]:
    """libpq's environment for a SQLAlchemy URL: the password goes in PGPASSWORD, never argv."""
    u = make_url(url)
    env = {**os.environ, "PGHOST": u.host or "127.0.0.1", "PGPORT": str(u.port or 5432),
           "PGUSER": u.username or "postgres", "PGDATABASE": u.database or "postgres"}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return env, env["PGDATABASE"]


def _run_pg(args: list[str], url: str) -> None:
    env, _ = _pg_env(url)
    r = subprocess.run(args, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise BackupError("database_tool_failed", f"{Path(args[0]).name} failed: {r.stderr.strip()[-500:]}")


# --- backup -----------------------------------------------------------------------------------
def _snapshot_database(engine: Engine, settings: Settings, out: Path) -> str:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        source = sqlite3.connect(make_url(settings.db_url).database, timeout=30)
        target = sqlite3.connect(out / SQLITE_FILE)
        try:
            source.backup(target)  # one step: a consistent snapshot even while the service writes
        finally:
            target.close()
            source.close()
        return dialect
    if dialect == "postgresql":
        _run_pg([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                 f"--file={out / PGDUMP_FILE}"], settings.db_url)
        return dialect
    raise BackupError("database_unsupported", f"cannot back up a {dialect} database")


def _copy_objects(store: ObjectStore, out: Path, progress: Progress | None) -> tuple[int, int]:
    count = size = 0
    for account, sha256 in store.iter_objects():
        target = out / OBJECTS / account / sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(target, "wb") as f:
            for chunk in store.open(account, sha256):
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
        if h.hexdigest() != sha256:  # content-addressed: a damaged object is found here, not at restore
            raise BackupError("object_corrupt", f"object {account}/{sha256} in the store does not match its hash")
        count += 1
        if progress and count % 1000 == 0:
            progress("objects", count)
    return count, size


def _copy_home_files(settings: Settings, out: Path) -> int:
    home = settings.home
    db_path = Path(make_url(settings.db_url).database or "") if settings.db_url.startswith("sqlite") else None
    count = 0
    for dirpath, dirnames, names in os.walk(home):
        rel = Path(dirpath).relative_to(home)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in _NOT_HOME_FILES]
        for name in names:
            source = Path(dirpath) / name
            if rel == Path(".") and name in _NOT_HOME_FILES or (db_path and source.resolve() == db_path.resolve()):
                continue
            target = out / HOME / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            count += 1
    return count


def _dump_node_state(settings: Settings, out: Path) -> bool:
    """The managed node's state, dumped by the node itself when it runs (so it is as new as the
    database or newer), else its last state file."""
    if settings.chain_rpc_url:
        return False  # a chain the service does not run is not the service's to back up
    target = out / NODE_STATE
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        r = httpx.post(f"http://127.0.0.1:{settings.node_port}", timeout=120,
                       json={"jsonrpc": "2.0", "id": 1, "method": "anvil_dumpState", "params": []})
        result = r.json().get("result")
        if isinstance(result, str) and result.startswith("0x"):
            target.write_bytes(gzip.decompress(bytes.fromhex(result[2:])))
            return True
    except (httpx.HTTPError, ValueError, OSError):
        pass  # not running: its state on disk is the chain
    state = settings.node_dir / "anvil-state.json"
    if state.exists():
        shutil.copy2(state, target)
        return True
    return False


def backup(settings: Settings, engine: Engine, store: ObjectStore, dest: Path,
           progress: Progress | None = None) -> BackupSummary:
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError("backup_exists", f"{dest} exists and is not empty: back up into a new directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        os.chmod(work, 0o700)  # it holds private keys
        summary = BackupSummary(dest, _snapshot_database(engine, settings, work))
        summary.objects, summary.object_bytes = _copy_objects(store, work, progress)
        summary.files = _copy_home_files(settings, work)
        summary.node_state = _dump_node_state(settings, work)
        files = {}
        for path in sorted(p for p in work.rglob("*") if p.is_file()):
            files[path.relative_to(work).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        summary.total_bytes = sum(f["size"] for f in files.values())
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "database": summary.database,
            "storage": {"kind": store.kind, "objects": summary.objects, "bytes": summary.object_bytes},
            "node_state": summary.node_state,
            "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        _fsync_tree(work)
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


# --- restore ----------------------------------------------------------------------------------
def read_manifest(src: Path, progress: Progress | None = None) -> dict:
    """The backup's manifest, after checking that every file it lists is there, whole."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError("backup_missing", f"{src} is not a backup (no {MANIFEST})") from None
    except (ValueError, OSError) as exc:
        raise BackupError("backup_damaged", f"{src / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("backup_format", f"{src} is not a {FORMAT} backup (format {manifest.get('format')!r})")
    for n, (rel, meta) in enumerate(manifest["files"].items(), 1):
        path = src / rel
        if not path.is_file():
            raise BackupError("backup_damaged", f"{rel} is missing from the backup")
        if path.stat().st_size != meta["size"] or _sha256(path) != meta["sha256"]:
            raise BackupError("backup_damaged", f"{rel} does not match the manifest (damaged backup)")
        if progress and n % 1000 == 0:
            progress("checked", n)
    return manifest


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
            progress: Progress | None = None) -> RestoreSummary:
    """Write a checked backup into an empty home and database. The caller then opens the
    service, whose reconciliation re-sends whatever the chain it finds lacks."""
    src = Path(src)
    manifest = read_manifest(src, progress)
    settings.home.mkdir(parents=True, exist_ok=True)
    _check_target(settings, engine, manifest, src)
    marker = _restoring_marker(settings)
    marker.write_text(manifest["created_at"] + "\n")
    summary = RestoreSummary(manifest["created_at"], manifest["database"])
    files = manifest["files"]

    for rel in files:
        if rel.startswith(HOME + "/"):
            target = settings.home / rel[len(HOME) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, target)
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
            settings.node_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / NODE_STATE, settings.node_dir / "anvil-state.json")
            summary.node_state = "restored"

    for rel in files:
        if rel.startswith(OBJECTS + "/"):
            _, account, sha256 = rel.split("/")
            if not store.exists(account, sha256):
                fd, tmp = tempfile.mkstemp(dir=settings.home, prefix=".restore-object-")
                os.close(fd)
                shutil.copyfile(src / rel, tmp)
                store.put_file(account, sha256, Path(tmp), "application/octet-stream")  # served type is in the database
            summary.objects += 1
            if progress and summary.objects % 1000 == 0:
                progress("objects", summary.objects)

    # The database last: once it is there, the home is a service.
    engine.dispose()  # no connection may hold the file being replaced
    if manifest["database"] == "sqlite":
        db_path = Path(make_url(settings.db_url).database)
        tmp = db_path.with_name(db_path.name + ".restore-tmp")
        shutil.copyfile(src / SQLITE_FILE, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        for suffix in ("-wal", "-shm"):
            db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, db_path)
    elif not inspect(engine).get_table_names():  # (a resumed restore may have done it already)
        _run_pg([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                 f"--dbname={_pg_env(settings.db_url)[1]}", str(src / PGDUMP_FILE)], settings.db_url)
    marker.unlink()
    return summary
