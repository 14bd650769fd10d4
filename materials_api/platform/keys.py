"""The service's keys: which key store holds them, and the generations of each chain account.

`open_keystore(settings)` opens the configured custody (encrypted keystores or a PKCS#11
token). `ServiceKeys` names the service's chain accounts by purpose — governor, registrar,
notary, `org-<id>` for an issuer organisation — and keeps their generations in `service_keys`:
one active generation per purpose (created on first use), earlier ones retired (routine
rotation: what they wrote stays good) or compromised (from a block). A rotation made by
`qiyema keys rotate` in another process is picked up by a running service within
`REFRESH_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from chain.keystore import FileKeyStore, KeyStore, KeyStoreError
from chain.pkcs11_keystore import Pkcs11KeyStore
from chain.signers import Signer
from materials_api.platform.config import Settings
from materials_api.platform.models import ServiceKey

log = logging.getLogger("qiyema")

REFRESH_SECONDS = 5.0
SERVICE_PURPOSES = ("governor", "registrar", "notary")
ENTERPRISE_WRAPPING = "enterprise-code-wrap"  # wraps every enterprise's dynamic-code key
_OPEN: dict[tuple, KeyStore] = {}  # one store per custody per process: keys decrypted once
_OPEN_LOCK = threading.Lock()


def _read_secret_file(path: Path, what: str) -> bytes:
    try:
        value = Path(path).read_bytes().strip()
    except OSError as exc:
        raise KeyStoreError(f"{what}_file", f"cannot read the {what.replace('_', ' ')} file {path}: "
                                            f"{exc.strerror}") from None
    if not value:
        raise KeyStoreError(f"{what}_file", f"the {what.replace('_', ' ')} file {path} is empty")
    return value


def keystore_passphrase(settings: Settings) -> bytes:
    """From the environment, else a file; a development install with neither gets a random one
    in $QIYEMA_HOME/secrets (0600), kept out of backups."""
    if settings.keystore_passphrase is not None:
        value = settings.keystore_passphrase.get_secret_value().encode()
        if not value:
            raise KeyStoreError("keystore_passphrase", "QIYEMA_KEYSTORE_PASSPHRASE is empty")
        return value
    if settings.keystore_passphrase_file is not None:
        return _read_secret_file(settings.keystore_passphrase_file, "keystore_passphrase")
    path = settings.secrets_dir / "keystore-passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
        except FileExistsError:
            pass
    return _read_secret_file(path, "keystore_passphrase")


def open_keystore(settings: Settings) -> KeyStore:
    if settings.key_custody == "pkcs11":
        if settings.pkcs11_pin is not None:
            pin = settings.pkcs11_pin.get_secret_value()
        elif settings.pkcs11_pin_file is not None:
            pin = _read_secret_file(settings.pkcs11_pin_file, "pkcs11_pin").decode()
        else:
            raise KeyStoreError("pkcs11_pin", "key custody pkcs11 needs QIYEMA_PKCS11_PIN or QIYEMA_PKCS11_PIN_FILE")
        ident = ("pkcs11", settings.pkcs11_module, settings.pkcs11_token_label, pin)
        with _OPEN_LOCK:
            if ident not in _OPEN:
                _OPEN[ident] = Pkcs11KeyStore(settings.pkcs11_module, settings.pkcs11_token_label, pin)
            return _OPEN[ident]
    passphrase = keystore_passphrase(settings)
    ident = ("keystore", str(settings.keys_dir.resolve()), passphrase)
    with _OPEN_LOCK:
        if ident not in _OPEN:
            _OPEN[ident] = FileKeyStore(settings.keys_dir, passphrase, scrypt_n=settings.keystore_scrypt_n)
        return _OPEN[ident]


def plaintext_keys(settings: Settings) -> list[Path]:
    """Plaintext key files an older install left (`qiyema keys migrate` moves them)."""
    d = settings.keys_dir
    if not d.exists():
        return []
    return sorted([*d.glob("*.eth"), *d.glob("*.key")])


def _key_name(purpose: str, generation: int) -> str:
    return purpose if generation == 1 else f"{purpose}.{generation}"


class ServiceKeys:
    """The active key of each purpose, from the key store, by the `service_keys` table.
    Without `sessions` (setting up a network before any database) the first generation."""

    def __init__(self, store: KeyStore, sessions=None):
        self.store = store
        self.sessions = sessions
        self._active: dict[str, tuple[float, Signer]] = {}
        self._lock = threading.Lock()

    def account(self, purpose: str) -> Signer:
        hit = self._active.get(purpose)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with self._lock:
            signer = self._load_active(purpose)
            self._active[purpose] = (time.monotonic() + REFRESH_SECONDS, signer)
            return signer

    def forget(self, purpose: str | None = None) -> None:
        if purpose is None:
            self._active.clear()
        else:
            self._active.pop(purpose, None)

    def _load_active(self, purpose: str) -> Signer:
        if self.sessions is None:
            return self.store.load_or_create(_key_name(purpose, 1))
        with self.sessions() as s:
            row = s.scalar(select(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.status == "active")
                           .order_by(ServiceKey.generation.desc()).limit(1))
        if row is not None:
            signer = self.store.load(row.key_name)
            if signer is None:
                raise KeyStoreError("key_missing", f"the key store has no key {row.key_name!r} ({purpose}, "
                                                   f"generation {row.generation}, {row.address})")
            return signer
        with self.sessions() as s:
            generation = (s.scalar(select(func.max(ServiceKey.generation)).where(ServiceKey.purpose == purpose)) or 0) + 1
        if generation > 1:
            raise KeyStoreError("no_active_key", f"every {purpose} key is retired or compromised: "
                                                 f"run `qiyema keys rotate --role {purpose}`")
        return self._add(purpose, 1)

    def _add(self, purpose: str, generation: int) -> Signer:
        name = _key_name(purpose, generation)
        signer = self.store.load_or_create(name)
        try:
            with self.sessions.begin() as s:
                s.add(ServiceKey(purpose=purpose, generation=generation, key_name=name, address=signer.address))
        except IntegrityError:
            pass  # another process added the same generation first: same name, same key
        return signer

    def next_generation(self, purpose: str) -> tuple[ServiceKey | None, Signer]:
        """The active row of `purpose` (None if none) and a new key for its next generation,
        written ahead as `pending` (the caller grants it on chain, then `activate`s it)."""
        with self.sessions() as s:
            current = s.scalar(select(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.status == "active"))
            top = s.scalar(select(func.max(ServiceKey.generation)).where(ServiceKey.purpose == purpose)) or 0
            pending = s.scalar(select(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.status == "pending"))
        if pending is not None:  # a rotation stopped half-way: carry it on with the same key
            return current, self.store.load_or_create(pending.key_name)
        name = _key_name(purpose, top + 1)
        signer = self.store.load_or_create(name)
        with self.sessions.begin() as s:
            s.add(ServiceKey(purpose=purpose, generation=top + 1, key_name=name, address=signer.address,
                             status="pending"))
        return current, signer

    def activate(self, purpose: str, address: str) -> None:
        """The pending generation (granted on chain) becomes active; the previous active one retired."""
        now = datetime.now(timezone.utc)
        with self.sessions.begin() as s:
            s.execute(update(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.status == "active")
                      .values(status="retired", retired_at=now))
            s.execute(update(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.address == address)
                      .values(status="active"))
        self.forget(purpose)

    def mark_compromised(self, purpose: str, address: str, from_block: int) -> None:
        with self.sessions.begin() as s:
            s.execute(update(ServiceKey).where(ServiceKey.purpose == purpose, ServiceKey.address == address)
                      .values(status="compromised", compromised_from_block=from_block,
                              retired_at=func.coalesce(ServiceKey.retired_at, datetime.now(timezone.utc))))
        self.forget(purpose)

    def rows(self, purpose: str | None = None) -> list[ServiceKey]:
        with self.sessions() as s:
            q = select(ServiceKey).order_by(ServiceKey.purpose, ServiceKey.generation)
            if purpose is not None:
                q = q.where(ServiceKey.purpose == purpose)
            return list(s.scalars(q))
