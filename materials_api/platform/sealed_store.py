"""Materials encrypted at rest (issue 28): every object sealed under its own data key.

The object store (the folder, MinIO, a backup of either) holds only ciphertext. Each object's
data key is random, made for it alone, and kept in the database only wrapped by a wrapping key of
the key store or the PKCS#11 token (`object_keys`): a stolen object store or backup discloses
nothing without the key store's passphrase or the token. A new wrapping key re-wraps the data
keys (`rewrap`) and rewrites no object (objects are written once; an S3 bucket may lock them).

Objects stay named by the SHA-256 of their plaintext (what proofs fingerprint and reuse checks
compare), so an upload already stored for an account is still stored once.

Format of a sealed object (the "STREAM" construction: each chunk sealed on its own, so a download
streams in constant memory and a cut or reordered object does not open):

    "QYSEAL1\\n" | cipher id (1 byte: 1 AES-256-GCM, 2 SM4-GCM) | nonce prefix (7 bytes)
    chunk_0 … chunk_n: 64 KiB of plaintext (the last one shorter, possibly empty) + 16-byte tag,
    nonce = prefix | chunk number (4 bytes, big-endian) | 1 if last else 0,
    associated data = the 16-byte header | "<account>/<sha256>".

An object written before encryption was switched on (no key row, no header) is read as it is.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from chain.crypto_profile import AEADS, TAG_SIZE, Aead, CryptoError
from chain.keystore import KeyStore
from materials_api.platform.models import ObjectKey
from materials_api.platform.storage import ObjectStore, StorageError, object_key

MAGIC = b"QYSEAL1\n"
HEADER_SIZE = len(MAGIC) + 1 + 7
PLAIN_CHUNK = 64 * 1024
_SEALED_CHUNK = PLAIN_CHUNK + TAG_SIZE
_CIPHER_ID = {"AES-256-GCM": 1, "SM4-GCM": 2}
_ROW = (select(ObjectKey.cipher, ObjectKey.wrapping, ObjectKey.wrapped)
        .where(ObjectKey.account == bindparam("account"), ObjectKey.sha256 == bindparam("sha256")))


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def seal_file(aead: Aead, key: bytes, owner: bytes, source: Path, target: Path) -> None:
    prefix = os.urandom(7)
    header = MAGIC + bytes([_CIPHER_ID[aead.name]]) + prefix
    aad = header + owner
    with open(source, "rb") as src, open(target, "wb") as out:
        out.write(header)
        chunk, index = src.read(PLAIN_CHUNK), 0
        while True:
            following = src.read(PLAIN_CHUNK) if len(chunk) == PLAIN_CHUNK else b""
            last = not following
            out.write(aead.seal(key, _nonce(prefix, index, last), aad, chunk))
            if last:
                break
            chunk, index = following, index + 1
        out.flush()
        os.fsync(out.fileno())


def open_sealed(aead_of, key_of, owner: bytes, stored: Iterator[bytes]) -> Iterator[bytes]:
    """The plaintext of a sealed object, chunk by chunk; `CryptoError` if any byte was changed,
    the object was cut short or extended, or it is another object's. `aead_of(cipher_id)` and
    `key_of(aead)` give the cipher and the data key once the header is read."""
    buffer = bytearray()
    stored = iter(stored)
    for piece in stored:
        buffer += piece
        if len(buffer) >= HEADER_SIZE:
            break
    header = bytes(buffer[:HEADER_SIZE])
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        raise CryptoError("not a sealed object")
    aead = aead_of(header[len(MAGIC)])
    key, prefix, aad = key_of(aead), header[len(MAGIC) + 1:], header + owner
    del buffer[:HEADER_SIZE]
    index = 0
    for piece in itertools.chain((b"",), stored):  # b"": first the rest of the header's read
        buffer += piece
        # A full sealed chunk with more behind it is not the last one.
        while len(buffer) > _SEALED_CHUNK:
            yield aead.open(key, _nonce(prefix, index, False), aad, bytes(buffer[:_SEALED_CHUNK]))
            del buffer[:_SEALED_CHUNK]
            index += 1
    yield aead.open(key, _nonce(prefix, index, True), aad, bytes(buffer))


class SealedStore:
    """An `ObjectStore` that seals what it stores and opens what it serves (see the module)."""

    seals = True  # the sealed copy is fsynced before it is moved in: the spooled plaintext need not be

    def __init__(self, inner: ObjectStore, sessions, keystore: KeyStore, aead: Aead, wrapping: str,
                 cache_size: int = 4096):
        self.inner = inner
        self.kind = inner.kind
        self.sessions = sessions
        self._engine = sessions.kw["bind"]
        self.keystore = keystore
        self.aead = aead
        self.wrapping = wrapping
        self._keys: OrderedDict[tuple[str, str], bytes] = OrderedDict()  # unwrapped data keys, most recent last
        self._pending: OrderedDict[tuple[str, str], tuple[bytes, bytes]] = OrderedDict()  # written ahead
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @staticmethod
    def _owner(account: str, sha256: str) -> bytes:
        return object_key(account, sha256).encode()

    def warm(self) -> None:
        """Open the wrapping key now (a keystore file costs a second of scrypt once per process):
        at start, not in front of the first uploads."""
        self.keystore.wrap_data_key(self.wrapping, bytes(self.aead.key_size), b"warm-up")

    # --- data keys ---------------------------------------------------------------------------
    def _row(self, account: str, sha256: str):
        # Core, not the ORM's identity map: this runs on every upload and download.
        with self._engine.connect() as c:
            return c.execute(_ROW, {"account": account, "sha256": sha256}).first()

    def _data_key(self, account: str, sha256: str, row: ObjectKey) -> bytes:
        with self._lock:
            key = self._keys.get((account, sha256))
            if key is not None:
                self._keys.move_to_end((account, sha256))
                return key
        key = self.keystore.unwrap_data_key(row.wrapping, row.wrapped, self._owner(account, sha256))
        with self._lock:
            self._keys[(account, sha256)] = key
            while len(self._keys) > self._cache_size:
                self._keys.popitem(last=False)
        return key

    def write_ahead(self, conn, account: str, sha256: str) -> None:
        """Write the object's wrapped data key in the caller's transaction (the material's own
        write-ahead: one commit, not two); `put_file` then seals with it."""
        key = os.urandom(self.aead.key_size)
        wrapped = self.keystore.wrap_data_key(self.wrapping, key, self._owner(account, sha256))
        values = dict(account=account, sha256=sha256, cipher=self.aead.name, wrapping=self.wrapping, wrapped=wrapped)
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(ObjectKey).values(**values).on_conflict_do_nothing())
        with self._lock:  # kept until put_file finds this very row committed (then no unwrap is needed)
            self._pending[(account, sha256)] = (wrapped, key)
            while len(self._pending) > self._cache_size:
                self._pending.popitem(last=False)

    def _key_for_new(self, account: str, sha256: str) -> tuple[Aead, bytes]:
        """The object's data key: made and written ahead (wrapped) before any byte is stored, so
        an object in the store always has its key; a retry after a crash reuses it."""
        row = self._row(account, sha256)
        if row is None:  # a caller that wrote no key ahead (an inspection's photo, a restore)
            with self._engine.begin() as c:
                self.write_ahead(c, account, sha256)
            row = self._row(account, sha256)
        with self._lock:
            pending = self._pending.pop((account, sha256), None)
        if pending is not None and pending[0] == row.wrapped:  # made here: no unwrap needed
            return AEADS[row.cipher], pending[1]
        return AEADS[row.cipher], self._data_key(account, sha256, row)

    # --- the store ---------------------------------------------------------------------------
    def put_file(self, account: str, sha256: str, path: Path, content_type: str) -> bool:
        if self.inner.exists(account, sha256):
            Path(path).unlink(missing_ok=True)
            return False
        aead, key = self._key_for_new(account, sha256)
        sealed = Path(f"{path}.sealed")
        try:
            seal_file(aead, key, self._owner(account, sha256), Path(path), sealed)
            stored = self.inner.put_file(account, sha256, sealed, content_type)
        finally:
            sealed.unlink(missing_ok=True)
        Path(path).unlink(missing_ok=True)
        return stored

    def open(self, account: str, sha256: str) -> Iterator[bytes]:
        stored = self.inner.open(account, sha256)
        row = self._row(account, sha256)
        if row is None:
            # Written before encryption at rest: served as stored, unless it is sealed (then its
            # key is gone, and that is an error, never ciphertext handed out as the document).
            first = next(stored, b"")
            if first.startswith(MAGIC):
                raise StorageError(f"object {account}/{sha256} is sealed and its data key is missing")
            return _chain(first, stored)

        def key_of(aead: Aead) -> bytes:
            if aead.name != row.cipher:
                raise CryptoError(f"object {account}/{sha256} says {aead.name}, its key is for {row.cipher}")
            return self._data_key(account, sha256, row)

        return open_sealed(_aead_by_id, key_of, self._owner(account, sha256), stored)

    def exists(self, account: str, sha256: str) -> bool:
        return self.inner.exists(account, sha256)

    def iter_objects(self):
        return self.inner.iter_objects()

    def health(self) -> dict:
        return self.inner.health()

    def check(self, account: str, sha256: str) -> None:
        """Open the object and hash its plaintext: `StorageError` unless it is the object its
        name says (for backups: the check a plain object gets from its name)."""
        h = hashlib.sha256()
        try:
            for chunk in self.open(account, sha256):
                h.update(chunk)
        except CryptoError as exc:
            raise StorageError(f"object {account}/{sha256} does not open: {exc}") from None
        if h.hexdigest() != sha256:
            raise StorageError(f"object {account}/{sha256} does not match its hash once opened")

    def rewrap(self, wrapping: str | None = None) -> int:
        """Every data key not under `wrapping` (default: the configured one) unwrapped and wrapped
        again under it; the objects are not touched. Returns how many were re-wrapped."""
        wrapping = wrapping or self.wrapping
        done = 0
        with self.sessions() as s:
            rows = s.execute(select(ObjectKey.account, ObjectKey.sha256, ObjectKey.wrapping, ObjectKey.wrapped)
                             .where(ObjectKey.wrapping != wrapping)).all()
        for account, sha256, old, blob in rows:
            owner = self._owner(account, sha256)
            key = self.keystore.unwrap_data_key(old, blob, owner)
            with self.sessions.begin() as s:
                s.execute(update(ObjectKey).where(ObjectKey.account == account, ObjectKey.sha256 == sha256,
                                                  ObjectKey.wrapping == old)
                          .values(wrapping=wrapping, wrapped=self.keystore.wrap_data_key(wrapping, key, owner)))
            done += 1
        return done


def _aead_by_id(cipher_id: int) -> Aead:
    for name, number in _CIPHER_ID.items():
        if number == cipher_id:
            return AEADS[name]
    raise CryptoError(f"unknown cipher id {cipher_id}")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def is_sealed(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC
