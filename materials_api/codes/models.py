"""Code-signing keys, enterprises' own code signers and dynamic (one-time) codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from materials_api.identity.models import ApiKey
from materials_api.platform.db import Base
from materials_api.platform.models import ChainState, utcnow
from materials_api.registry.models import Enterprise


class CodeKey(Base):
    """Registrar keys that sign static codes; `kid` is printed in every code they sign.

    Each holds the registrar role on chain under its address. Under the intl profile it is a
    chain account whose private key is `code-signer-<kid>` in the key store; under gm it is an
    SM2 key (its address its SM2 key id) made in the key store and kept here only wrapped
    (`public_key`, `wrapped_key`, `wrapped_by`), like an enterprise's key. A rotated-out
    (retired) key's codes keep verifying; a compromised key's codes do not (static codes carry
    no time) and are re-issued (`qiyema code reissue`)."""

    __tablename__ = "code_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[int] = mapped_column(Integer, unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | retired | compromised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    compromised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(64), nullable=True)  # gm: SM2 X || Y
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(128), nullable=True)
    wrapped_by: Mapped[str | None] = mapped_column(String(80), nullable=True)


class StaticCodeIssue(Base):
    """Which key signed an enterprise's static code (it may be printed on a wall for years): who
    needs a new code when that key is declared compromised."""

    __tablename__ = "static_code_issues"
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), primary_key=True)
    kid: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
    first_issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnterpriseCodeSigner(Base):
    """The enterprise's dynamic-code signing key: a random key made in the key store and kept
    here only wrapped by the store's wrapping key `wrapped_by` (`backend:name`), so only the store
    can sign with it. Rotation makes a new key, bumps `key_version` and writes the new address
    on chain. A row without `wrapped_key` is a key an earlier version derived from one master
    secret: it is replaced at its next use."""

    __tablename__ = "enterprise_code_signers"
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), primary_key=True)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    address: Mapped[str] = mapped_column(String(42))
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary(64), nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(128), nullable=True)
    wrapped_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    chain_state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DynamicCode(Base):
    """Every dynamic code issued: its nonce, life, single-use state and consent scope."""

    __tablename__ = "dynamic_codes"
    nonce: Mapped[str] = mapped_column(String(24), primary_key=True)  # hex of 12 bytes
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
    issued_by_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    single_use: Mapped[bool] = mapped_column(default=False)
    scope: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

