"""Object storage for materials' bytes: content-addressed, written once, streamed in and out.

Two implementations of one interface: a local folder (the embedded default) and S3 through the
`minio` client (MinIO or any S3). Objects are keyed `<account>/<sha256>`, so storage is
deduplicated within an account and one enterprise cannot probe another's files. Uploads are
first spooled to disk while hashing (constant memory), then handed to the store.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Protocol

from chain.durable import fsync_dir

CHUNK = 1 << 20
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class StorageError(RuntimeError):
    """A storage operation failed for a reason that is not the caller's (maps to 503)."""


class ObjectMissing(StorageError):
    pass


def object_key(account: str, sha256: str) -> str:
    if not _ACCOUNT.match(account) or not _SHA256.match(sha256):
        raise ValueError(f"bad object address {account!r}/{sha256!r}")
    return f"{account}/{sha256}"


@dataclass(frozen=True)
class Spooled:
    """An upload received on disk, with its fingerprints."""

    path: Path
    size: int
    sha256: str
    sm3: str
    head: bytes  # the first bytes, for content sniffing

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def sweep_spool(directory: Path, older_than: float) -> int:
    """Remove uploads left in the spool by a process that died mid-upload (nothing in the spool
    was acknowledged); only files untouched for `older_than` seconds, so an upload still arriving
    in another worker is left alone. Returns how many were removed."""
    import time

    removed = 0
    cutoff = time.time() - older_than
    for path in Path(directory).glob("upload-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # finished (moved into the store) meanwhile
    return removed


class Spool:
    """Receives a stream into a temp file while computing SHA-256 and SM3, with a size limit."""

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        try:
            fd, name = tempfile.mkstemp(dir=self.directory, prefix="upload-")
        except FileNotFoundError:  # the first upload (a mkdir on every upload costs more than this)
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.directory, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self._sha256 = hashlib.sha256()
        self._sm3 = hashlib.new("sm3")
        self.size = 0
        self._head = bytearray()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise OverflowError(self.max_bytes)
        if len(self._head) < 4096:
            self._head += chunk[: 4096 - len(self._head)]
        self._sha256.update(chunk)
        self._sm3.update(chunk)
        self._file.write(chunk)

    def finish(self, durable: bool = True) -> Spooled:
        """The spooled file, fsynced unless only read and thrown away (a verification)."""
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())
        self._file.close()
        return Spooled(self.path, self.size, self._sha256.hexdigest(), self._sm3.hexdigest(), bytes(self._head))

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


class ObjectStore(Protocol):
    kind: str
    # Whether put_file writes (and fsyncs) new bytes of its own (sealed_store.py): the spooled
    # upload then needs no fsync of its own, being read once and deleted.
    seals: bool

    def put_file(self, account: str, sha256: str, path: Path, content_type: str) -> bool:
        """Store the file at `path` (consumed); False if the object was already there."""

    def exists(self, account: str, sha256: str) -> bool: ...

    def write_ahead(self, conn, account: str, sha256: str) -> None:
        """Called in the caller's write-ahead transaction before `put_file`: a store that
        encrypts writes the object's wrapped key there (sealed_store.py); these do nothing."""

    def iter_objects(self) -> Iterator[tuple[str, str]]:
        """Every object's (account, sha256), in no set order (for backups)."""

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        """The object's bytes in chunks; raises ObjectMissing."""

    def health(self) -> dict: ...


class LocalObjectStore:
    kind = "local"
    seals = False

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, account: str, sha256: str) -> Path:
        object_key(account, sha256)
        return self.root / account / sha256[:2] / sha256

    def put_file(self, account: str, sha256: str, path: Path, content_type: str) -> bool:
        final = self._path(account, sha256)
        if final.exists():
            Path(path).unlink(missing_ok=True)
            return False
        os.chmod(path, 0o444)  # write-once: nobody rewrites an object in place
        try:
            os.replace(path, final)  # atomic; the spool is on the same file system
        except FileNotFoundError:  # the prefix folder's first object
            final.parent.mkdir(parents=True, exist_ok=True)
            self._move(path, final)
            fsync_dir(final.parent.parent)  # the new prefix folder's name
        except OSError:
            shutil.move(str(path), final)
        fsync_dir(final.parent)  # "stored" survives a power cut: the object's name too
        return True

    @staticmethod
    def _move(path: Path, final: Path) -> None:
        try:
            os.replace(path, final)
        except OSError:  # another file system
            shutil.move(str(path), final)

    def exists(self, account: str, sha256: str) -> bool:
        return self._path(account, sha256).exists()

    def write_ahead(self, conn, account: str, sha256: str) -> None:
        pass  # plain bytes: nothing to write ahead

    def iter_objects(self) -> Iterator[tuple[str, str]]:
        if not self.root.is_dir():
            return
        for account in sorted(os.listdir(self.root)):
            if not _ACCOUNT.match(account):
                continue  # the health probe and anything else that is not an account
            for prefix in sorted(os.listdir(self.root / account)):
                for name in sorted(os.listdir(self.root / account / prefix)):
                    if _SHA256.match(name):
                        yield account, name

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        path = self._path(account, sha256)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise ObjectMissing(f"no object {account}/{sha256}") from None

        def chunks():
            with f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return chunks()

    def health(self) -> dict:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".health"
        probe.write_bytes(b"ok")
        ok = probe.read_bytes() == b"ok"
        probe.unlink()
        return {"ok": ok, "kind": self.kind, "root": str(self.root)}


class S3ObjectStore:
    """S3 through the minio client. With object lock on the bucket, every object gets a
    retention period, so not even an operator's key can overwrite or delete it early."""

    kind = "s3"
    seals = False

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool = False,
                 retention_days: int = 0, region: str | None = None):
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=30), retries=urllib3.Retry(
            total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)))
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=http)
        self.bucket = bucket
        self.retention_days = retention_days
        self._ready = False

    def _errors(self):
        import urllib3
        from minio.error import S3Error

        return (S3Error, urllib3.exceptions.HTTPError, OSError)

    def _ensure_bucket(self) -> None:
        if self._ready:
            return
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket, object_lock=self.retention_days > 0)
        except self._errors() as exc:
            raise StorageError(f"object store unavailable: {type(exc).__name__}: {exc}") from None
        self._ready = True

    def put_file(self, account: str, sha256: str, path: Path, content_type: str) -> bool:
        from minio.commonconfig import GOVERNANCE
        from minio.retention import Retention

        key = object_key(account, sha256)
        self._ensure_bucket()
        try:
            if self.exists(account, sha256):
                return False
            retention = None
            if self.retention_days > 0:
                until = datetime.now(timezone.utc) + timedelta(days=self.retention_days)
                retention = Retention(GOVERNANCE, until)
            self.client.fput_object(self.bucket, key, str(path), content_type=content_type,
                                    metadata={"x-amz-meta-sha256": sha256}, retention=retention,
                                    part_size=16 * CHUNK)
            return True
        except self._errors() as exc:
            raise StorageError(f"object store unavailable: {type(exc).__name__}: {exc}") from None
        finally:
            Path(path).unlink(missing_ok=True)

    def write_ahead(self, conn, account: str, sha256: str) -> None:
        pass  # plain bytes: nothing to write ahead

    def exists(self, account: str, sha256: str) -> bool:
        from minio.error import S3Error

        key = object_key(account, sha256)
        self._ensure_bucket()
        try:
            self.client.stat_object(self.bucket, key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return False
            raise StorageError(f"object store error: {exc.code}") from None
        except self._errors() as exc:
            raise StorageError(f"object store unavailable: {type(exc).__name__}") from None

    def iter_objects(self) -> Iterator[tuple[str, str]]:
        self._ensure_bucket()
        try:
            for obj in self.client.list_objects(self.bucket, recursive=True):
                account, _, sha256 = obj.object_name.partition("/")
                if _ACCOUNT.match(account) and _SHA256.match(sha256):
                    yield account, sha256
        except self._errors() as exc:
            raise StorageError(f"object store unavailable: {type(exc).__name__}: {exc}") from None

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        from minio.error import S3Error

        key = object_key(account, sha256)
        self._ensure_bucket()
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectMissing(f"no object {key}") from None
            raise StorageError(f"object store error: {exc.code}") from None
        except self._errors() as exc:
            raise StorageError(f"object store unavailable: {type(exc).__name__}") from None

        def chunks():
            try:
                yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def health(self) -> dict:
        """A live round trip to the server, every time (not the cached bucket check)."""
        self._ready = False
        try:
            self._ensure_bucket()
            return {"ok": True, "kind": self.kind, "bucket": self.bucket}
        except StorageError as exc:
            return {"ok": False, "kind": self.kind, "error": str(exc)}


def open_store(settings) -> ObjectStore:
    if settings.storage == "s3":
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise StorageError("QIYEMA_STORAGE=s3 needs QIYEMA_S3_ENDPOINT, QIYEMA_S3_ACCESS_KEY, QIYEMA_S3_SECRET_KEY")
        return S3ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                             secure=settings.s3_secure, retention_days=settings.s3_retention_days)
    if settings.storage != "local":
        raise StorageError(f"unknown storage {settings.storage!r}: use local or s3")
    return LocalObjectStore(settings.objects_dir)
