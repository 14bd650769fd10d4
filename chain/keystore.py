"""Where the service's keys are kept: never as plaintext files.

A `KeyStore` holds named secp256k1 keys (chain accounts, code-signing keys) and *wrapped keys*:
keys too many to name (one per enterprise, for its dynamic codes; a city has 100,000 of them),
made inside the store and handed out only encrypted under one of the store's wrapping keys, so
the database keeps them and only the store can sign with them:

- `FileKeyStore`: one standard Ethereum JSON keystore (version 3, scrypt) per name in a folder,
  encrypted under one passphrase; its address is read from the file, and the key decrypted on
  its first signature, once per process (a command that signs nothing pays no scrypt). Its
  wrapping key is a 32-byte secret kept the same way; wrapped keys are AES-256-GCM bound to
  their owner (the associated data). Software custody: a key signs in this process's memory.
- `Pkcs11KeyStore` (chain/pkcs11_keystore.py): keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in tests), on
  secp256k1, non-extractable, found by label. Its wrapping key is an AES-256 key of the token
  that cannot leave it; a wrapped key is generated in the token, wrapped there (CKM_AES_KEY_WRAP_PAD,
  RFC 5649) and unwrapped there into a non-extractable session object to sign: neither the
  wrapping key nor an enterprise's key is ever in the service's memory.

`load_or_create(name)` is idempotent and safe against two processes creating the same name at
once (the file is created exclusively; the token is searched again before a key is made).
Wrong passphrase or PIN: `KeyStoreError` with a reason code, nothing changed on disk.
"""

from __future__ import annotations

import json
import os
import re
import secrets as random
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eth_keyfile import create_keyfile_json, decode_keyfile_json
from eth_utils import to_checksum_address

from .crypto_profile import CryptoError, Sm2Signer, sm2_key_id
from .durable import fsync_dir
from .errors import Kind, QiyemaError
from .signers import SECP256K1_N, LazySigner, LocalSigner, Signer, public_key_address

STANDARD_SCRYPT_N = 1 << 18  # geth's standard scrypt cost (256 MiB, about a second a key)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WRAP_AAD = b"qiyema.wrapped-key.v1\x00"
_DATA_KEY_AAD = b"qiyema.data-key.v1\x00"  # a data key is never taken for a signing key, nor the reverse
_SM2_OWNER = b"sm2-signing-key\x00"  # an SM2 key's wrapped bytes are never opened as a data key's
WRAPPED_CACHE = 4096  # wrapped keys kept open per process (the hot enterprises of a city)


class KeyStoreError(QiyemaError):
    """A key store that cannot be opened or read (wrong passphrase or PIN, a missing token or
    key): the service does not start; nothing on disk or in the token is changed."""

    def __init__(self, code: str, message: str):
        super().__init__(Kind.UNAVAILABLE, code, message)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise KeyStoreError("key_name", f"{name!r} is not a key name (a-z, 0-9, '.', '_', '-')")
    return name


@dataclass(frozen=True)
class WrappedKey:
    """A key encrypted under the wrapping key `wrapping` of a `backend` store: the database keeps
    it; only that store can sign with it. `public_key` is X || Y (64 bytes); `scheme` is
    `secp256k1`, or `sm2` under the gm profile (its address is then its SM2 key id)."""

    backend: str
    wrapping: str
    public_key: bytes
    blob: bytes
    scheme: str = "secp256k1"

    @property
    def address(self) -> str:
        return sm2_key_id(self.public_key) if self.scheme == "sm2" else public_key_address(self.public_key)

    @property
    def wrapped_by(self) -> str:
        return f"{self.backend}:{self.wrapping}"


class _OpenKeys:
    """A bounded LRU of signers opened from wrapped keys (keyed by the wrapped bytes and owner)."""

    def __init__(self, size: int):
        self._size = size
        self._open: OrderedDict[bytes, Signer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, blob: bytes) -> Signer | None:
        with self._lock:
            signer = self._open.get(blob)
            if signer is not None:
                self._open.move_to_end(blob)
            return signer

    def put(self, blob: bytes, signer: Signer) -> Signer:
        with self._lock:
            self._open[blob] = signer
            while len(self._open) > self._size:
                self._open.popitem(last=False)
        return signer


class KeyStore(ABC):
    backend: str
    _sm2_open: _OpenKeys | None = None

    @abstractmethod
    def load(self, name: str) -> Signer | None:
        """The key called `name`, or None."""

    @abstractmethod
    def create(self, name: str, private_key: bytes | None = None) -> Signer:
        """A new key called `name` (random, or `private_key` when moving one in)."""

    def new_wrapped_key(self, wrapping: str, owner: bytes, scheme: str = "secp256k1") -> WrappedKey:
        """A new random key (`scheme` secp256k1 or sm2) made for `owner` (bytes naming whom it
        belongs to), returned only wrapped by the wrapping key `wrapping` (created on first use).

        An SM2 key (the gm profile's code keys) is made by GmSSL and wrapped as a data key is
        (`wrap_data_key`): no PKCS#11 module here has SM2 (SoftHSM2 has none), so it signs in
        this process's memory under either custody; its bytes at rest are opened only by the
        custody's wrapping key (docs/operations.md §3)."""
        if scheme != "sm2":
            return self._new_wrapped_secp256k1(wrapping, owner)
        signer = Sm2Signer.generate()
        blob = self.wrap_data_key(wrapping, signer.private_bytes(), _SM2_OWNER + owner)
        self._opened_sm2().put(blob + owner, signer)
        return WrappedKey(self.backend, wrapping, signer.public_key, blob, "sm2")

    def wrapped_signer(self, key: WrappedKey, owner: bytes) -> Signer | Sm2Signer:
        """A signer for a key this store wrapped for `owner`. `KeyStoreError` `key_missing`
        when the wrapping key is not here, `wrapped_key_invalid` when the bytes were not
        wrapped by it for this owner (tampered, swapped between owners)."""
        if key.scheme != "sm2":
            return self._wrapped_secp256k1_signer(key, owner)
        opened = self._opened_sm2()
        signer = opened.get(key.blob + owner)
        if signer is None:
            private = self.unwrap_data_key(key.wrapping, key.blob, _SM2_OWNER + owner)
            try:
                signer = Sm2Signer(private, key.public_key)
            except CryptoError:
                raise KeyStoreError("wrapped_key_invalid", "a wrapped key is not the key its public key names") from None
            opened.put(key.blob + owner, signer)
        return signer

    def _opened_sm2(self) -> _OpenKeys:
        if self._sm2_open is None:
            self._sm2_open = _OpenKeys(WRAPPED_CACHE)
        return self._sm2_open

    @abstractmethod
    def _new_wrapped_secp256k1(self, wrapping: str, owner: bytes) -> WrappedKey:
        """A new secp256k1 key made in the store for `owner`, returned only wrapped."""

    @abstractmethod
    def _wrapped_secp256k1_signer(self, key: WrappedKey, owner: bytes) -> Signer:
        """A signer for a secp256k1 key this store wrapped for `owner`."""

    @abstractmethod
    def wrap_data_key(self, wrapping: str, data_key: bytes, owner: bytes) -> bytes:
        """`data_key` (a data-at-rest key made by the caller) wrapped by the store's wrapping key
        `wrapping` (created on first use) for `owner`; only this store opens it again."""

    @abstractmethod
    def unwrap_data_key(self, wrapping: str, blob: bytes, owner: bytes) -> bytes:
        """The data key `wrap_data_key` wrapped for `owner`. `KeyStoreError` `key_missing` when the
        wrapping key is not here, `wrapped_key_invalid` when the bytes were not wrapped by it for
        this owner."""

    def can_unwrap(self, key: WrappedKey) -> bool:
        """Whether `key` was wrapped by a store of this kind (custody may have moved since)."""
        return key.backend == self.backend

    @abstractmethod
    def names(self) -> list[str]:
        """The names of the keys held."""

    def check_passphrase(self, prefer: str = "governor") -> None:
        """Raise `KeyStoreError` now if the store's secret (passphrase, PIN) is wrong."""

    def load_or_create(self, name: str) -> Signer:
        return self.load(name) or self.create(name)


class FileKeyStore(KeyStore):
    backend = "keystore"

    def __init__(self, directory: Path, passphrase: bytes, *, scrypt_n: int = STANDARD_SCRYPT_N):
        if not passphrase:
            raise KeyStoreError("keystore_passphrase", "the keystore passphrase is empty")
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._loaded: dict[str, Signer] = {}
        self._secrets: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._wrapped = _OpenKeys(WRAPPED_CACHE)

    def path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.json"

    def _decrypt(self, path: Path) -> bytes:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyStoreError("keystore_unreadable", f"{path} is not a JSON keystore: {exc}") from None
        try:
            return decode_keyfile_json(data, self._passphrase)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise KeyStoreError("keystore_passphrase", f"wrong passphrase for {path}") from None
            raise KeyStoreError("keystore_unreadable", f"{path}: {exc}") from None

    def load(self, name: str) -> Signer | None:
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            path = self.path(name)
            if not path.exists():
                return None
            try:
                address = to_checksum_address(json.loads(path.read_text())["address"])
            except (OSError, ValueError, KeyError, TypeError):
                raise KeyStoreError("keystore_unreadable", f"{path} is not a JSON keystore with an address") from None
            signer = LazySigner(address, lambda: LocalSigner(self._decrypt(path)), threading.Lock())
            self._loaded[name] = signer
            return signer

    def check_passphrase(self, prefer: str = "governor") -> None:
        """Open one key now (the governor's if there), so a wrong passphrase is found when the
        service starts, not at its first signature; that key is then kept open."""
        names = self.names()
        if not names:
            return
        name = prefer if prefer in names else names[0]
        signer = self.load(name)
        if isinstance(signer, LazySigner):
            signer.private_bytes()  # decrypts (once) and checks the address the file states

    def _write_new(self, path: Path, value: bytes) -> bool:
        """Write `value` encrypted at `path` unless the file exists (then False)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        body = json.dumps(create_keyfile_json(value, self._passphrase, kdf="scrypt", iterations=self._scrypt_n))
        tmp = path.with_name(f".{path.name}.{random.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and exclusive: of two creators, one wins
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
            fsync_dir(self.directory)
        return True

    def create(self, name: str, private_key: bytes | None = None) -> Signer:
        path = self.path(name)
        key = private_key or _random_key()
        if not self._write_new(path, key):
            if private_key is not None and self._decrypt(path) != bytes(private_key):
                raise KeyStoreError("key_exists", f"the keystore already holds another key called {name!r}")
            return self.load(name)
        with self._lock:
            self._loaded[name] = LocalSigner(key)
            return self._loaded[name]

    def _secret(self, name: str, *, create: bool) -> bytes:
        """The 32-byte secret called `name` (a wrapping key), kept as a keystore file."""
        path = self.path(name)
        if not path.exists():
            if not create:
                raise KeyStoreError("key_missing", f"the keystore has no wrapping key {name!r}")
            self._write_new(path, _random_key())
        with self._lock:
            if name not in self._secrets:
                self._secrets[name] = self._decrypt(path)
            return self._secrets[name]

    def _new_wrapped_secp256k1(self, wrapping: str, owner: bytes) -> WrappedKey:
        key = _random_key()
        signer = LocalSigner(key)
        nonce = random.token_bytes(12)
        blob = nonce + AESGCM(self._secret(wrapping, create=True)).encrypt(nonce, key, _WRAP_AAD + owner)
        self._wrapped.put(blob + owner, signer)
        return WrappedKey(self.backend, wrapping, signer.public_key_bytes(), blob)

    def _wrapped_secp256k1_signer(self, key: WrappedKey, owner: bytes) -> Signer:
        signer = self._wrapped.get(key.blob + owner)
        if signer is not None:
            return signer
        wrap = self._secret(key.wrapping, create=False)
        try:
            plain = AESGCM(wrap).decrypt(key.blob[:12], key.blob[12:], _WRAP_AAD + owner)
        except (InvalidTag, ValueError):
            raise KeyStoreError("wrapped_key_invalid", "a wrapped key does not open under its wrapping key "
                                                       "for its owner") from None
        signer = LocalSigner(plain)
        if signer.public_key_bytes() != key.public_key:
            raise KeyStoreError("wrapped_key_invalid", "a wrapped key is not the key its public key names")
        return self._wrapped.put(key.blob + owner, signer)

    def wrap_data_key(self, wrapping: str, data_key: bytes, owner: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._secret(wrapping, create=True)).encrypt(nonce, data_key, _DATA_KEY_AAD + owner)

    def unwrap_data_key(self, wrapping: str, blob: bytes, owner: bytes) -> bytes:
        try:
            return AESGCM(self._secret(wrapping, create=False)).decrypt(blob[:12], blob[12:], _DATA_KEY_AAD + owner)
        except (InvalidTag, ValueError):
            raise KeyStoreError("wrapped_key_invalid", "a wrapped data key does not open under its wrapping key "
                                                       "for its owner") from None

    def names(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if not p.name.startswith("."))


def _random_key() -> bytes:
    while True:
        key = random.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
