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
Restoring (and reading a backup as hostile) is platform/restore.py. No domain knowledge here:
re-sending what a reset chain lost is the caller's (`cli/backup.py`).
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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
from sqlalchemy.engine import Engine, make_url

from eth_utils import keccak

from chain.durable import fsync_dir
from chain.errors import InputError
from chain.signers import Signer
from materials_api.platform.config import Settings
from materials_api.platform.sealed_store import SealedStore, is_sealed
from materials_api.platform.storage import CHUNK, ObjectStore, StorageError

FORMAT = "qiyema-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNED = b"qiyema.backup.manifest.v1\x00"
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
NOT_HOME_FILES = {"objects", "spool", "node", "metrics", "secrets", "qiyema.db", "qiyema.db-wal", "qiyema.db-shm",
                   "qiyema.db-journal", RESTORING, "governor.key"}

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


def sha256_file(path: Path) -> str:
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
def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not candidates:
        raise BackupError("pg_tools_missing", f"{name} not found (install PostgreSQL's client tools)")
    return str(candidates[-1])


def pg_env(url: str) -> tuple[dict, str]:
    """libpq's environment for a SQLAlchemy URL: the password goes in PGPASSWORD, never argv."""
    u = make_url(url)
    env = {**os.environ, "PGHOST": u.host or "127.0.0.1", "PGPORT": str(u.port or 5432),
           "PGUSER": u.username or "postgres", "PGDATABASE": u.database or "postgres"}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return env, env["PGDATABASE"]


def run_pg(args: list[str], url: str) -> None:
    env, _ = pg_env(url)
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
        run_pg([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                 f"--file={out / PGDUMP_FILE}"], settings.db_url)
        return dialect
    raise BackupError("database_unsupported", f"cannot back up a {dialect} database")


def _copy_objects(store: ObjectStore, out: Path, progress: Progress | None,
                  check_sealed: Callable[[str, str], None] | None) -> tuple[int, int, set[str]]:
    """Objects are copied as stored: sealed ones (encrypted at rest) stay ciphertext in the
    backup, checked by opening them (`check_sealed`); plain ones by their name."""
    count = size = 0
    sealed: set[str] = set()
    for account, sha256 in store.iter_objects():
        target = out / OBJECTS / account / sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(target, "wb") as f:
            for chunk in store.open(account, sha256):
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
        if is_sealed(target):
            if check_sealed is None:
                raise BackupError("object_sealed", f"object {account}/{sha256} is sealed and no key store was given "
                                                   "to check it")
            try:
                check_sealed(account, sha256)
            except StorageError as exc:
                raise BackupError("object_corrupt", str(exc)) from None
            sealed.add(f"{OBJECTS}/{account}/{sha256}")
        elif h.hexdigest() != sha256:  # content-addressed: a damaged object is found here, not at restore
            raise BackupError("object_corrupt", f"object {account}/{sha256} in the store does not match its hash")
        count += 1
        if progress and count % 1000 == 0:
            progress("objects", count)
    return count, size, sealed


def _copy_home_files(settings: Settings, out: Path) -> int:
    home = settings.home
    db_path = Path(make_url(settings.db_url).database or "") if settings.db_url.startswith("sqlite") else None
    count = 0
    for dirpath, dirnames, names in os.walk(home):
        rel = Path(dirpath).relative_to(home)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in NOT_HOME_FILES]
        for name in names:
            source = Path(dirpath) / name
            if rel == Path(".") and name in NOT_HOME_FILES or (db_path and source.resolve() == db_path.resolve()):
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
           progress: Progress | None = None, *, signer: Signer,
           check_sealed: Callable[[str, str], None] | None = None) -> BackupSummary:
    """`signer`: the governor, whose signature over the manifest a restore checks;
    `check_sealed(account, sha256)`: opens a sealed object and checks its plaintext's hash."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError("backup_exists", f"{dest} exists and is not empty: back up into a new directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        os.chmod(work, 0o700)  # it holds private keys
        summary = BackupSummary(dest, _snapshot_database(engine, settings, work))
        # The bytes as stored (ciphertext when sealed: a backup never holds a document in the
        # clear), checked through the sealing store when one is given.
        if isinstance(store, SealedStore):
            store, check_sealed = store.inner, check_sealed or store.check
        summary.objects, summary.object_bytes, sealed = _copy_objects(store, work, progress, check_sealed)
        summary.files = _copy_home_files(settings, work)
        summary.node_state = _dump_node_state(settings, work)
        files = {}
        for path in sorted(p for p in work.rglob("*") if p.is_file()):
            rel = path.relative_to(work).as_posix()
            files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
            if rel in sealed:  # its name is its plaintext's hash, not this file's
                files[rel]["sealed"] = True
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
        signature = signer.sign_hash(keccak(SIGNED + body))
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
