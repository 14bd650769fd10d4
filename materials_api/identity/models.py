"""Who may call: organisations, their API keys, people and their sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from materials_api.platform.db import Base
from materials_api.platform.models import utcnow


class Role(str, enum.Enum):
    GOVERNOR = "governor"
    REGISTRAR = "registrar"
    ISSUER = "issuer"
    CLERK = "clerk"
    ENTERPRISE = "enterprise"
    BANK = "bank"
    INSPECTOR = "inspector"
    PUBLIC = "public"
    # Reads /metrics and nothing more (what anyone may read aside): the credential a Prometheus
    # configuration holds, instead of the governor's key.
    SCRAPER = "scraper"


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SignInFailures(Base):
    """Wrong passwords in a row for one user name from one client address (an IPv6 /64). The
    lock-out is per pair: a stranger guessing from elsewhere cannot lock a person out, and a
    name that does not exist is counted like one that does (the answers say nothing of which)."""

    __tablename__ = "sign_in_failures"
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)  # unix seconds
    updated_at: Mapped[float] = mapped_column(Float, index=True)


class UserSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's secret is stored."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(secret) hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)

