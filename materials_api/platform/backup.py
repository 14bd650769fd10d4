"""Backups that restore: one directory holding a consistent copy of what a service keeps.

What is copied, in this order, and why the order makes it consistent: the database first (one
snapshot: SQLite's online backup API, or `pg_dump`), then the objects, the home's files (keys,
deployments, the governor's API key) and last the managed chain node's state. Everything copied
after the snapshot is at worst *ahead* of the database, which is exactly the state a crash
leaves (write-ahead in the database, then store, then chain) and what reconciliation on start
repairs. In-flight uploads (the spool) are not copied: nothing in it was acknowledged.

A backup is written under a temporary name and renamed when complete, so a directory with a
manifest is a whole backup. The manifest lists every file with its size and SHA-256, and the
governor signs it (`manifest.sig`): `restore` takes the governor's address from the operator
(never from the backup) and refuses a backup it did not sign, then checks every file before it
writes anything, refuses a home or database that already holds a service, and writes the
database last, so a restore that stops half-way is simply run again.

A backup is read as hostile: a path in the manifest must be one a backup writes (no `..`, no
absolute path, nothing outside the home, no link), an object's name must be its own hash, and
each file is hashed again as it is copied (a file swapped after the check is refused, not
written). No secret travels in plaintext: keys are in their encrypted keystores (or stay in the
token), the keystore's passphrase is never copied, nor the governor's API key (`qiyema init`
after a restore writes a new one).
No domain knowledge here: re-sending what a reset chain lost is the caller's (`cli/backup.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
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

from eth_keys.datatypes import Signature
from eth_utils import keccak, to_checksum_address

from chain.durable import fsync_dir
from chain.errors import InputError
from chain.signers import Signer
from materials_api.platform.config import Settings
from materials_api.platform.storage import CHUNK, ObjectStore

FORMAT = "qiyema-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_SIGNED = b"qiyema.backup.manifest.v1\x00"
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
# "governor.key": the governor's API key, in plaintext (a restore's `qiyema init` makes a new one).
_NOT_HOME_FILES = {"objects", "spool", "node", "metrics", "secrets", "qiyema.db", "qiyema.db-wal", "qiyema.db-shm",
                   "qiyema.db-journal", RESTORING, "governor.key"}
_OBJECT = re.compile(r"^objects/([a-z0-9][a-z0-9-]{0,62})/([0-9a-f]{64})$")
_SEGMENT = re.compile(r"^[^/\\\x00]+$")

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
    signer: str = ""


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
           progress: Progress | None = None, *, signer: Signer) -> BackupSummary:
    """`signer`: the governor, whose signature over the manifest a restore checks."""
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
        body = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
        (work / MANIFEST).write_bytes(body)
        signature = signer.sign_hash(keccak(_SIGNED + body))
        (work / SIGNATURE).write_text(json.dumps({"signer": signer.address, "signature": signature.to_hex()}) + "\n")
        summary.signer = signer.address
        _fsync_tree(work)
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


# --- restore ----------------------------------------------------------------------------------
def manifest_signer(src: Path) -> str | None:
    """The address that signed the backup's manifest, or None (unsigned, or not a signature)."""
    try:
        body = (Path(src) / MANIFEST).read_bytes()
        sig = json.loads((Path(src) / SIGNATURE).read_text())
        signature = Signature(bytes.fromhex(str(sig["signature"]).removeprefix("0x")))
        return signature.recover_public_key_from_msg_hash(keccak(_SIGNED + body)).to_checksum_address()
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
        if path.stat().st_size != meta["size"] or _sha256(path) != meta["sha256"]:
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
        if found is None or found.group(2) != meta["sha256"]:
            raise BackupError("backup_path", f"{rel[:200]!r} is not an object named by its own hash")
        return
    if parts[0] == HOME and len(parts) > 1 and parts[1] not in _NOT_HOME_FILES:
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

    for rel in files:
        if rel.startswith(OBJECTS + "/"):
            _, account, sha256 = rel.split("/")
            if not store.exists(account, sha256):
                tmp = settings.home / f".restore-object-{sha256}"
                _copy_checked(src / rel, tmp, sha256)
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
            _run_pg([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                     f"--dbname={_pg_env(settings.db_url)[1]}", str(dump)], settings.db_url)
        finally:
            dump.unlink(missing_ok=True)
    marker.unlink()
    return summary
