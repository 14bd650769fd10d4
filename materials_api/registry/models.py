"""The enterprise register and its bulk imports."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from materials_api.identity.models import ApiKey
from materials_api.platform.db import Base
from materials_api.platform.models import ChainState, utcnow


class EnterpriseStatus(str, enum.Enum):
    ACTIVE = "active"  # 存续
    ABNORMAL = "abnormal"  # 经营异常
    REVOKED = "revoked"  # 吊销
    DEREGISTERED = "deregistered"  # 注销


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
    actor_key_id: Mapped[int | None] = mapped_column(ForeignKey(ApiKey.id), nullable=True)
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

