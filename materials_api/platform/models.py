"""Tables every domain shares: chain nonces and leases, and the chain-witness state."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, Field
from sqlalchemy import BigInteger, DateTime, Float, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from codes import uscc
from materials_api.platform.db import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# Every time the service stores is UTC; SQLite hands them back without a zone. In an API body a
# time always says its zone (RFC 3339), as the OpenAPI `date-time` format requires.
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]

# A row id as a request names it: what the id columns hold (INTEGER, signed 32 bits on
# PostgreSQL); anything beyond is refused as invalid input, never sent to the database.
ROW_ID_MAX = 2**31 - 1
RowIdValue = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]
# A USCC as a request names it. The pattern is documented, not enforced by the schema layer, so
# a wrong one gets the domain's reason (`uscc_length`, `uscc_illegal_character` with its
# position, `uscc_check_character` with the expected character).
USCC_SCHEMA = {"pattern": uscc.PATTERN, "examples": ["91350100M000100Y43"]}
USCC_DESCRIPTION = "统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character"
UsccValue = Annotated[str, Field(description=USCC_DESCRIPTION, json_schema_extra=USCC_SCHEMA)]


class ChainState(str, enum.Enum):
    PENDING = "pending"  # written ahead, not yet witnessed on chain
    SENT = "sent"  # transaction sent, receipt not yet seen
    CONFIRMED = "confirmed"  # the chain shows what the database holds


# What the chain does not witness yet: asked for by value (not `!= confirmed`) so the database
# answers from the chain_state index instead of reading every row.
UNWITNESSED = (ChainState.PENDING.value, ChainState.SENT.value)


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



class ChainEvent(Base):
    """The chain mirror: every event of the deployed contract that a verdict depends on, one
    row each (a `LeavesRevoked` gives one row per leaf). Append-only and keyed by position, so
    re-reading a block range changes nothing and a reorg is undone by deleting from a block on.
    kind / subject / item / account / value:
      anchored          root / -          / anchorer / leaf count   (at: the block's time)
      leaf_revoked      root / leaf index / -        / -
      record_status     root / record index / -      / status (IRecordRegistry.RecordStatus)
      enterprise        uscc key / -      / code signer / status (registered: Active)
      enterprise_status uscc key / -      / -        / status
      code_signer       uscc key / -      / signer   / -
      role              role id  / -      / account  / 1 granted, 0 revoked"""

    __tablename__ = "chain_events"
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item: Mapped[int] = mapped_column(BigInteger, primary_key=True, default=-1)  # -1: not per leaf
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(66))  # 0x + 32 bytes, lower case
    account: Mapped[str | None] = mapped_column(String(42), nullable=True)  # checksummed
    value: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # block time (anchors)

    __table_args__ = (Index("ix_chain_events_lookup", "kind", "subject", "item", "block_number"),)


class ChainMirrorBlock(Base):
    """Blocks the mirror has read, newest ones kept (hash and parent) to find where a reorg
    forked; the highest is how far the mirror has reached."""

    __tablename__ = "chain_mirror_blocks"
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    read_at: Mapped[float] = mapped_column(Float)  # unix seconds: when the mirror last saw this as its head


class ChainMirrorMark(Base):
    """Named block marks of the mirror. `status_changed`: the newest block in which the mirror
    saw a status change (a revocation, a record's or an enterprise's status, a role or a code
    signer), or a reorg undone: cached scan answers are keyed by it, so such a change shows in the
    very next scan."""

    __tablename__ = "chain_mirror_marks"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)  # also "contract:<address>"
    block_number: Mapped[int] = mapped_column(BigInteger)
    changes: Mapped[int] = mapped_column(BigInteger, default=0)  # how many times it moved (a reorg may lower it)


class ServiceKey(Base):
    """The generations of each of the service's chain accounts (`purpose`: governor, registrar,
    notary, org-<id> for an issuer organisation). One is active; a rotation adds the next
    generation and retires the previous one; a compromise marks it with the block its writes
    stop counting from. The key itself is in the key store under `key_name`."""

    __tablename__ = "service_keys"
    __table_args__ = (UniqueConstraint("purpose", "generation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    key_name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | retired | compromised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    compromised_from_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ScanHour(Base):
    """Code verdicts given in one hour, by status: the district page's scans per hour. Each
    instance adds what its processes counted since its last write (a few rows an hour, never one
    per scan)."""

    __tablename__ = "scan_hours"
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix seconds at the hour's start
    status: Mapped[str] = mapped_column(String(8), primary_key=True)  # VALID | INVALID | ERROR
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class ObjectKey(Base):
    """The data key of one stored object, wrapped by a wrapping key of the key store (or the
    PKCS#11 token): the object store holds only ciphertext, and re-wrapping a key (a new
    wrapping key) rewrites this row, never the object."""

    __tablename__ = "object_keys"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # of the plaintext
    cipher: Mapped[str] = mapped_column(String(16))  # AES-256-GCM | SM4-GCM
    wrapping: Mapped[str] = mapped_column(String(64), index=True)  # the wrapping key's name
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
