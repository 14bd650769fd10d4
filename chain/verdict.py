"""Typed verification results shared by every verifier (codes, materials, records): independent
checks, each VALID / INVALID / ERROR / SKIPPED with a reason code, combined into one status.
ERROR (something could not be checked) is never turned into INVALID or VALID."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Status(str, enum.Enum):
    VALID = "VALID"
    INVALID = "INVALID"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str
    message: str = ""

    def as_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


def combine(checks: list[Check]) -> Status:
    """INVALID if any check is INVALID, else ERROR if any is ERROR, else VALID."""
    statuses = {c.status for c in checks}
    if Status.INVALID in statuses:
        return Status.INVALID
    if Status.ERROR in statuses:
        return Status.ERROR
    return Status.VALID
