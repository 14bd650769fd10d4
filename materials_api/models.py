"""Database tables. The database is the record; the chain witnesses it."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Role(str, enum.Enum):
    GOVERNOR = "governor"
    REGISTRAR = "registrar"
    ISSUER = "issuer"
    CLERK = "clerk"
    ENTERPRISE = "enterprise"
    BANK = "bank"
    INSPECTOR = "inspector"
    PUBLIC = "public"


class EnterpriseStatus(str, enum.Enum):
    ACTIVE = "active"  # 存续
    ABNORMAL = "abnormal"  # 经营异常
    REVOKED = "revoked"  # 吊销
    DEREGISTERED = "deregistered"  # 注销


class ChainState(str, enum.Enum):
    PENDING = "pending"  # written ahead, not yet witnessed on chain
    SENT = "sent"  # transaction sent, receipt not yet seen
    CONFIRMED = "confirmed"  # the chain shows what the database holds


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    keys: Mapped[list["ApiKey"]] = relationship(back_populates="organisation")


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    role: Mapped[str] = mapped_column(String(20))
    # issuer: the record category; enterprise: the USCC it acts for; otherwise empty.
    scope: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    organisation: Mapped[Organisation] = relationship(back_populates="keys")


class Enterprise(Base):
    __tablename__ = "enterprises"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=EnterpriseStatus.ACTIVE.value)
    # What the chain was last seen to hold; differs from `status` while a change is pending.
    chain_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    chain_state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    import_job_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_enterprises_chain_state", "chain_state"),)


class EnterpriseEvent(Base):
    """Audit trail of every change to an enterprise, with the transaction that witnessed it."""

    __tablename__ = "enterprise_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # registered | status_changed
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImportJob(Base):
    __tablename__ = "import_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_name: Mapped[str] = mapped_column(String(500))
    next_row: Mapped[int] = mapped_column(Integer, default=1)  # first data row not yet taken in
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImportRejection(Base):
    __tablename__ = "import_rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    uscc: Mapped[str] = mapped_column(String(64))
    reason_code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("job_id", "row"),)


class CodeKey(Base):
    """Registrar keys that sign static codes; `kid` is printed in every code they sign.

    Each is a chain account holding the registrar role; its private key is the file
    `$QIYEMA_HOME/keys/code-signer-<kid>.eth`. A rotated-out key stops verifying."""

    __tablename__ = "code_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[int] = mapped_column(Integer, unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | retired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EnterpriseCodeSigner(Base):
    """The enterprise's dynamic-code signing key: derived from the custodial master secret and
    `key_version`; rotation bumps the version and writes the new address on chain."""

    __tablename__ = "enterprise_code_signers"
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), primary_key=True)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    address: Mapped[str] = mapped_column(String(42))
    chain_state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DynamicCode(Base):
    """Every dynamic code issued: its nonce, life, single-use state and consent scope."""

    __tablename__ = "dynamic_codes"
    nonce: Mapped[str] = mapped_column(String(24), primary_key=True)  # hex of 12 bytes
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    issued_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    single_use: Mapped[bool] = mapped_column(default=False)
    scope: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class MaterialState(str, enum.Enum):
    STORING = "storing"  # written ahead; bytes on their way to the store
    UPLOADED = "uploaded"  # stored, awaiting the enterprise's confirmation
    CONFIRMED = "confirmed"  # trusted label given; waiting for its batch
    ANCHORED = "anchored"  # its leaf's root is on chain; proof stored
    SUPERSEDED = "superseded"  # a newer version of it was confirmed
    WITHDRAWN = "withdrawn"  # the enterprise took it back (revoked on chain if anchored)
    REVOKED = "revoked"  # declared invalid by a clerk (revoked on chain)


class TrustLabel(str, enum.Enum):
    SELF_ATTESTED = "self_attested"  # confirmed by the enterprise
    ORIGINAL_CHECKED = "original_checked"  # filed by a clerk who saw the original


class Material(Base):
    __tablename__ = "materials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    type_code: Mapped[str] = mapped_column(String(32), index=True)
    classified: Mapped[bool] = mapped_column(default=False)  # folder chosen by the classifier
    title: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(255))  # sanitised; metadata only, never a path
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sm3: Mapped[str] = mapped_column(String(64))
    lineage_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # first version's id
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"), nullable=True)
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # unix seconds
    state: Mapped[str] = mapped_column(String(12), default=MaterialState.STORING.value, index=True)
    label: Mapped[str | None] = mapped_column(String(20), nullable=True)
    uploaded_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    confirmed_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_batches.id"), nullable=True, index=True)
    leaf_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    leaf: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    proof: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of hex nodes
    revocation_state: Mapped[str | None] = mapped_column(String(12), nullable=True)  # pending | confirmed
    revocation_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    revocation_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reuse_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AnchorBatch(Base):
    """One Merkle root on chain. Written ahead with its leaves before the transaction is sent."""

    __tablename__ = "anchor_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    leaf_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    contract: Mapped[str | None] = mapped_column(String(42), nullable=True)
    anchored_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Application(Base):
    """An application (办事申请) for a service item, auto-filled from the material bank."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    service_item: Mapped[str] = mapped_column(String(40))
    created_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApplicationMaterial(Base):
    __tablename__ = "application_materials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    type_code: Mapped[str] = mapped_column(String(32))
    material_id: Mapped[int | None] = mapped_column(ForeignKey("materials.id"), nullable=True)
    __table_args__ = (UniqueConstraint("application_id", "type_code"),)


class Reuse(Base):
    """A receiving department's check of a material for an application: one reuse."""

    __tablename__ = "reuses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    service_item: Mapped[str] = mapped_column(String(40))
    verifier_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    verifier_org: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("material_id", "application_id"),)


class IssuerAccount(Base):
    """The custodial chain account an issuing organisation signs its records with
    (`$QIYEMA_HOME/keys/org-<id>.eth`), and the categories it was granted on chain."""

    __tablename__ = "issuer_accounts"
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    categories: Mapped[str] = mapped_column(Text, default="")  # comma-separated, granted on chain


class Record(Base):
    """A licence, permit, regulatory or credit record, inspection or bank receipt."""

    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(32), index=True)
    number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    valid_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="valid")  # valid | suspended | revoked | removed
    status_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    issuer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    issuer_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    leaf_index: Mapped[int] = mapped_column(Integer, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    proof: Mapped[str] = mapped_column(Text, default="[]")
    chain_state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value, index=True)
    chain_status: Mapped[str | None] = mapped_column(String(12), nullable=True)  # last status witnessed
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ConsentGrant(Base):
    """申请人授权用: the enterprise lets one verifier organisation read listed materials."""

    __tablename__ = "consent_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    verifier_organisation: Mapped[str] = mapped_column(String(200))
    material_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    material_types: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    application_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    purpose: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessLogEntry(Base):
    """Every read of an enterprise's non-public data, and every refused attempt."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    organisation: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))  # scan_view | material_download | ...
    target: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(12))  # allowed | denied
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ChainNonce(Base):
    """The next nonce each sending account may use, shared by every service instance: instances
    may talk to different nodes, whose pending pools lag each other, so the node alone cannot
    tell a second instance which nonce the first just used."""

    __tablename__ = "chain_nonces"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    # "<chain id>:<genesis hash>": a chain started afresh under the same id starts from zero.
    chain: Mapped[str] = mapped_column(String(90), primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[float] = mapped_column(Float, default=0.0)  # unix seconds


class Lease(Base):
    """A named lease one instance holds at a time (the background worker: anchoring, chain
    reconciliation, record witnessing); a holder that stops renewing loses it after its TTL."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)  # unix seconds
    acquired_at: Mapped[float] = mapped_column(Float)


class User(Base):
    """A person who signs in to the pages: belongs to one organisation, acts in one role (and,
    for enterprise staff and issuers, one scope), like an API key does for a machine."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str | None] = mapped_column(String(100), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # argon2id; None: OIDC only
    oidc_subject: Mapped[str | None] = mapped_column(String(300), nullable=True, unique=True)  # "<issuer>|<sub>"
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)  # unix seconds
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's secret is stored."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(secret) hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
