"""Where the service's keys are kept: never as plaintext files.

A `KeyStore` holds named secp256k1 keys (chain accounts, code-signing keys) and named 32-byte
secrets (the custodial master from which enterprises' dynamic-code keys are derived):

- `FileKeyStore`: one standard Ethereum JSON keystore (version 3, scrypt) per name in a folder,
  encrypted under one passphrase; its address is read from the file, and the key decrypted on
  its first signature, once per process (a command that signs nothing pays no scrypt).
- `Pkcs11KeyStore`: keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in tests), on
  secp256k1, non-extractable, found by label; secrets kept as private data objects of the token.

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
from pathlib import Path

from eth_keyfile import create_keyfile_json, decode_keyfile_json
from eth_utils import to_checksum_address

from .errors import Kind, QiyemaError
from .signers import SECP256K1_N, LazySigner, LocalSigner, Pkcs11Signer, Signer

STANDARD_SCRYPT_N = 1 << 18  # geth's standard scrypt cost (256 MiB, about a second a key)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class KeyStoreError(QiyemaError):
    """A key store that cannot be opened or read (wrong passphrase or PIN, a missing token or
    key): the service does not start; nothing on disk or in the token is changed."""

    def __init__(self, code: str, message: str):
        super().__init__(Kind.UNAVAILABLE, code, message)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise KeyStoreError("key_name", f"{name!r} is not a key name (a-z, 0-9, '.', '_', '-')")
    return name


class KeyStore(ABC):
    backend: str

    @abstractmethod
    def load(self, name: str) -> Signer | None:
        """The key called `name`, or None."""

    @abstractmethod
    def create(self, name: str, private_key: bytes | None = None) -> Signer:
        """A new key called `name` (random, or `private_key` when moving one in)."""

    @abstractmethod
    def secret(self, name: str) -> bytes:
        """The 32-byte secret called `name`, created (random) if absent."""

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

    def secret(self, name: str) -> bytes:
        path = self.path(name)
        if not path.exists():
            self._write_new(path, _random_key())
        with self._lock:
            if name not in self._secrets:
                self._secrets[name] = self._decrypt(path)
            return self._secrets[name]

    def names(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if not p.name.startswith("."))

    def put_secret(self, name: str, value: bytes) -> None:
        """Move an existing 32-byte secret in (`qiyema keys migrate`)."""
        path = self.path(name)
        if not self._write_new(path, value) and self._decrypt(path) != value:
            raise KeyStoreError("key_exists", f"the keystore already holds another secret called {name!r}")


class Pkcs11KeyStore(KeyStore):
    """Keys in a PKCS#11 token: `module` is the library (.so), the token is found by label and
    opened with the user PIN once; one read-write session serves the process."""

    backend = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str):
        try:
            import pkcs11
        except ImportError:  # pragma: no cover - python-pkcs11 is a dependency
            raise KeyStoreError("pkcs11_missing", "python-pkcs11 is not installed") from None
        self._pkcs11 = pkcs11
        try:
            lib = pkcs11.lib(module)
        except (RuntimeError, OSError) as exc:
            raise KeyStoreError("pkcs11_module", f"cannot load the PKCS#11 module {module}: {exc}") from None
        try:
            token = lib.get_token(token_label=token_label)
        except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
            raise KeyStoreError("pkcs11_token", f"no single token labelled {token_label!r} in {module}") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.PinIncorrect:
            raise KeyStoreError("pkcs11_pin", f"wrong PIN for token {token_label!r}") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyStoreError("pkcs11_token", f"cannot open token {token_label!r}: {type(exc).__name__}") from None
        self._lock = threading.Lock()
        self._loaded: dict[str, Signer] = {}

    def _find(self, name: str, object_class):
        return list(self._session.get_objects({self._pkcs11.Attribute.LABEL: check_name(name),
                                               self._pkcs11.Attribute.CLASS: object_class}))

    def load(self, name: str) -> Signer | None:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            private, public = self._find(name, ObjectClass.PRIVATE_KEY), self._find(name, ObjectClass.PUBLIC_KEY)
            if not private or not public:
                return None
            signer = Pkcs11Signer(private[0], public[0][Attribute.EC_POINT], self._lock)
            self._loaded[name] = signer
            return signer

    def create(self, name: str, private_key: bytes | None = None) -> Signer:
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        existing = self.load(name)
        if existing is not None:
            if private_key is not None and existing.address != LocalSigner(private_key).address:
                raise KeyStoreError("key_exists", f"the token already holds another key called {name!r}")
            return existing
        curve = encode_named_curve_parameters("secp256k1")
        with self._lock:
            if private_key is None:
                params = self._session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: curve}, local=True)
                params.generate_keypair(store=True, label=name, private_template={
                    Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.PRIVATE: True,
                    Attribute.SIGN: True})
            else:  # moving a key in: the module holds it from now on, unextractable
                point = b"\x04" + LocalSigner(private_key)._key.public_key.to_bytes()
                self._session.create_object({
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: curve, Attribute.VALUE: bytes(private_key), Attribute.LABEL: name,
                    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False, Attribute.SIGN: True})
                self._session.create_object({
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: curve, Attribute.EC_POINT: b"\x04\x41" + point, Attribute.LABEL: name,
                    Attribute.TOKEN: True, Attribute.VERIFY: True})
        return self.load(name)

    def secret(self, name: str) -> bytes:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            found = self._find(name, ObjectClass.DATA)
            if not found:
                self._put(name, _random_key())
                found = self._find(name, ObjectClass.DATA)
            return bytes(found[0][Attribute.VALUE])

    def put_secret(self, name: str, value: bytes) -> None:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            found = self._find(name, ObjectClass.DATA)
            if found and bytes(found[0][Attribute.VALUE]) != value:
                raise KeyStoreError("key_exists", f"the token already holds another secret called {name!r}")
            if not found:
                self._put(name, value)

    def _put(self, name: str, value: bytes) -> None:
        from pkcs11 import Attribute, ObjectClass

        # A private data object: readable only after logging in with the PIN, kept encrypted by the module.
        self._session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: name,
                                     Attribute.VALUE: value, Attribute.TOKEN: True, Attribute.PRIVATE: True,
                                     Attribute.APPLICATION: "qiyema"})

    def names(self) -> list[str]:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            return sorted({o[Attribute.LABEL] for o in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})})

    def close(self) -> None:
        self._session.close()


def _random_key() -> bytes:
    while True:
        key = random.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key
