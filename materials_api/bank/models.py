"""The material bank: materials, anchor batches, applications, reuses, consent and the access log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from materials_api.identity.models import ApiKey
from materials_api.platform.db import Base
from materials_api.platform.models import ChainState, utcnow
from materials_api.registry.models import Enterprise


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
    # An upload's idempotency check: these bytes in this enterprise's bank already?
    __table_args__ = (Index("ix_materials_enterprise_sha256", "enterprise_id", "sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
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
    uploaded_by_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    confirmed_by_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_batches.id"), nullable=True, index=True)
    leaf_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    leaf: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    proof: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of hex nodes
    # When it was witnessed again after its anchoring key was declared compromised (ReplacedProof).
    proof_replaced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
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


class ReplacedProof(Base):
    """A material's earlier proof (its place in a batch) that no longer counts: its batch was
    anchored by a key declared compromised, and the material was witnessed again under the
    current key (`Anchorer.rewitness`). A verifier handed the old bundle is told the replacement."""

    __tablename__ = "replaced_proofs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"), index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf_index: Mapped[int] = mapped_column(Integer)
    anchorer: Mapped[str] = mapped_column(String(42))
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_replaced_proofs_place", "root", "leaf_index"),)


class Application(Base):
    """An application (办事申请) for a service item, auto-filled from the material bank."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
    service_item: Mapped[str] = mapped_column(String(40))
    created_by_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
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
    verifier_key_id: Mapped[int] = mapped_column(ForeignKey(ApiKey.id))
    verifier_org: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("material_id", "application_id"),)


class ConsentGrant(Base):
    """申请人授权用: the enterprise lets one verifier organisation read listed materials."""

    __tablename__ = "consent_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
    verifier_organisation: Mapped[str] = mapped_column(String(200))
    material_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    material_types: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    application_ids: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    purpose: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessLogEntry(Base):
    """Every read of an enterprise's non-public data, and every refused attempt."""

    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    organisation: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))  # scan_view | material_download | ...
    target: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(12))  # allowed | denied
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

