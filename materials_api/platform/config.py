"""All settings in one place, from environment variables prefixed QIYEMA_."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QIYEMA_", extra="ignore")

    home: Path = Field(default=Path.home() / ".qiyema", description="data directory")
    # Chain: an RPC URL, or none for the managed local anvil node under $QIYEMA_HOME/node.
    chain_rpc_url: str | None = None
    node_port: int = 8545
    # Seconds between the managed node's state dumps (always dumped on a clean stop). A dump
    # stalls the node for a moment; what a crash loses in between, the reconciliation re-sends.
    node_state_interval: int = 60
    # The managed node seals a block on every transaction and, beside that, at least this often
    # (anvil's mixed mining), so the age of its head means what it means on a Clique or QBFT
    # network: how long ago the chain last moved. 0: only on transactions.
    node_block_time: float = 10.0
    chain_id: int = 31337
    confirmations: int = 1
    chain_timeout: float = 60.0  # waiting for a transaction's receipt and confirmations
    # One request to the node waits at most this long; a node that did not answer in time is not
    # asked again for `chain_breaker_cooldown` seconds (verdicts say ERROR chain_timeout at once).
    chain_request_timeout: float = 3.0
    chain_breaker_cooldown: float = 5.0
    # Key custody: "keystore" (encrypted Ethereum JSON keystores under $QIYEMA_HOME/keys; the
    # passphrase from QIYEMA_KEYSTORE_PASSPHRASE, or the file QIYEMA_KEYSTORE_PASSPHRASE_FILE,
    # else one made at $QIYEMA_HOME/secrets/keystore-passphrase for a development install) or
    # "pkcs11" (keys generated in an HSM token, never leaving it). No plaintext key files.
    key_custody: Literal["keystore", "pkcs11"] = "keystore"
    keystore_passphrase: SecretStr | None = None
    keystore_passphrase_file: Path | None = None
    keystore_scrypt_n: int = 1 << 18  # scrypt cost of keys this service creates (geth's standard)
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "qiyema"
    pkcs11_pin: SecretStr | None = None
    pkcs11_pin_file: Path | None = None
    # Database: SQLAlchemy URL; none means SQLite at $QIYEMA_HOME/qiyema.db.
    database_url: str | None = None
    # Storage: "local" (content-addressed folder under $QIYEMA_HOME/objects) or "s3".
    storage: str = "local"
    s3_endpoint: str | None = None  # host:port
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "qiyema-materials"
    s3_secure: bool = False
    s3_retention_days: int = 0  # > 0: object lock with this retention (bucket created with lock)
    # Materials encrypted at rest (platform/sealed_store.py): each object under its own data key,
    # wrapped by this wrapping key of the key custody; naming a new one and running
    # `qiyema keys rewrap-objects` re-wraps every data key (the objects stay as they are).
    encrypt_at_rest: bool = True
    storage_wrapping_key: str = "object-wrap-1"
    # The deployment's cryptography (chain/crypto_profile.py): intl (AES-256-GCM at rest) or gm
    # (SM4-GCM at rest); fixed at `qiyema init --profile` in the home's crypto-profile file.
    crypto_profile: Literal["intl", "gm"] = "intl"
    max_upload_bytes: int = 512 * 1024 * 1024
    spool_max_age: float = 6 * 3600  # an upload untouched this long in the spool is a dead process's: removed
    # The edge (api/edges.py): bodies larger than these are refused 413 before they are read;
    # anonymous verification and sign-in are limited per client address (429; 0: no limit).
    max_body_bytes: int = 1024 * 1024
    max_batch_body_bytes: int = 32 * 1024 * 1024  # /records/batch (10,000 changes), /verify/materials
    max_verify_upload_bytes: int = 64 * 1024 * 1024  # a file sent to /verify/material only to be hashed
    rate_limit_verify_per_minute: int = 600
    rate_limit_sign_in_per_minute: int = 30
    trusted_proxies: list[str] = Field(default_factory=list)  # reverse proxies whose X-Forwarded-For is believed
    # Password hashes (argon2id, 64 MiB each) computed at once, beside the request threads.
    password_hash_concurrency: int = 2
    # Anchoring: a batch is sent when it has this many leaves or its oldest waited this long.
    anchor_batch_size: int = 1024
    anchor_max_wait: float = 2.0
    # Codes: the origin every code points at (the verification page is <public_url>/V/...).
    public_url: str = "http://127.0.0.1:8000"
    dynamic_code_ttl: int = 300
    keyset_ttl: int = 7 * 24 * 3600
    # Enterprise import and reconciliation.
    register_batch_size: int = 500
    reconcile_interval: float = 5.0
    # The chain mirror's follower: how often it reads on, and how many blocks per read when
    # catching up (eth_getLogs ranges).
    mirror_interval: float = 0.5
    mirror_batch_blocks: int = 2000
    # How often each instance writes its code verdicts into the district page's scans per hour.
    scan_hours_interval: float = 60.0
    # A record verdict checked against a mirror not at the node's head within this many seconds
    # says ERROR mirror_behind (0: no such check, for apps that run no follower).
    mirror_max_age: float = 30.0
    # Scans: how long a worker keeps what thousands of records share from the mirror (a batch's
    # anchor, an issuer holding its role; positive answers only) and, a quarter of it, the
    # mirror's head. The same bound as the scan answers' own cache (2 s); 0: read every time.
    mirror_cache_ttl: float = 2.0
    # Several instances: the background worker's lease; a dead holder is replaced after this.
    leader_lease_ttl: float = 10.0
    # Verification: a head block older than this (seconds) means the chain has halted, so
    # revocations made since cannot be seen and verdicts say ERROR `chain_halted`. On by default
    # (every supported chain seals on a clock: Clique and QBFT by their period, the managed anvil
    # by `node_block_time`); 0 turns it off (a chain that seals only on demand).
    chain_max_head_age: float = 120.0
    # People's sign-in: session lifetime; lock-out after this many failures in a row, for this long.
    session_ttl: float = 8 * 3600
    login_max_failures: int = 5
    login_lockout_seconds: float = 15 * 60
    # OpenID Connect (optional): the provider's issuer URL and this service's client registration.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_display_name: str = "统一身份认证"

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'qiyema.db'}"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def deployments_dir(self) -> Path:
        return self.home / "deployments"

    @property
    def trust_list_path(self) -> Path:
        """The governor-signed list of the deployments verifiers accept (chain/trust.py)."""
        return self.home / "trust-list.json"

    @property
    def node_dir(self) -> Path:
        return self.home / "node"

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def secrets_dir(self) -> Path:
        """A development install's generated passphrase (never in a backup)."""
        return self.home / "secrets"

    @property
    def governor_key_file(self) -> Path:
        return self.home / "governor.key"
