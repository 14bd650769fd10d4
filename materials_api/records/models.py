"""Records issued by the authorities (licences, permits, regulatory entries) and their issuers."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from materials_api.identity.models import ApiKey, Organisation
from materials_api.platform.db import Base
from materials_api.platform.models import ChainState, utcnow
from materials_api.registry.models import Enterprise


class RecordState(str, enum.Enum):
    """A record's standing in the register, as its issuer set it."""

    VALID = "valid"
    SUSPENDED = "suspended"  # 暂停
    REVOKED = "revoked"  # 撤销/吊销
    REMOVED = "removed"  # 已移出 (e.g. taken off the abnormal-operations list)


class IssuerAccount(Base):
    """The custodial chain account an issuing organisation signs its records with (`org-<id>`
    in the key store, its active generation), and the categories it was granted on chain."""

    __tablename__ = "issuer_accounts"
    organisation_id: Mapped[int] = mapped_column(ForeignKey(Organisation.id), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    categories: Mapped[str] = mapped_column(Text, default="")  # comma-separated, granted on chain


class Record(Base):
    """A licence, permit, regulatory or credit record, inspection or bank receipt."""

    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey(Enterprise.id), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(32))  # not indexed: no query selects by it
    number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    valid_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="valid")  # valid | suspended | revoked | removed
    status_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    issuer_organisation_id: Mapped[int] = mapped_column(ForeignKey(Organisation.id))
    issuer_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    leaf_index: Mapped[int] = mapped_column(Integer, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    chain_state: Mapped[str] = mapped_column(String(12), default=ChainState.PENDING.value, index=True)
    chain_status: Mapped[str | None] = mapped_column(String(12), nullable=True)  # last status witnessed
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Where the record came from in its issuer's own system (the feed and the bulk import): one
    # record per (issuer, source_id), its newest version held; an amendment is a new record that
    # supersedes the old one (whose leaf is then revoked on chain).
    source_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_records_source", "issuer_organisation_id", "source_id", "source_version", unique=True),)


class RecordImport(Base):
    """A bulk import of one file by one issuer organisation, with its checkpoint (the first line
    not yet written ahead), so an interrupted import resumes where it stopped."""

    __tablename__ = "record_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey(Organisation.id))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(500))
    next_line: Mapped[int] = mapped_column(Integer, default=1)
    applied: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_record_imports_source", "organisation_id", "source_sha256", unique=True),)


class RecordImportRejection(Base):
    __tablename__ = "record_import_rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey(RecordImport.id), index=True)
    line: Mapped[int] = mapped_column(Integer)
    source_id: Mapped[str] = mapped_column(String(100))
    reason_code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)



class RecordSourceCursor(Base):
    """How far `qiyema records follow` has read a source's change list, per issuer."""

    __tablename__ = "record_source_cursors"
    organisation_id: Mapped[int] = mapped_column(ForeignKey(Organisation.id), primary_key=True)
    source_url: Mapped[str] = mapped_column(String(500), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(200))
    applied: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
