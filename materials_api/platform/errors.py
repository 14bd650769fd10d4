"""Domain services. Their refusals are `ServiceError`s of a `Kind`; the HTTP layer alone turns a
kind into a status (`api/errors.py`), the CLI into a message and a non-zero exit."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    """What sort of refusal: the caller's input, its rights, the object's state, or a part down."""

    INVALID = "invalid"                  # the request itself is wrong
    UNAUTHENTICATED = "unauthenticated"  # who is calling could not be established
    FORBIDDEN = "forbidden"              # known caller, not allowed
    NOT_FOUND = "not_found"              # no such object (or not one the caller may know of)
    CONFLICT = "conflict"                # the object's state does not allow it (now)
    UNSUPPORTED = "unsupported"          # a kind of content the service does not take
    LOCKED = "locked"                    # temporarily refused (an account locked after failures)
    UNAVAILABLE = "unavailable"          # a part the answer needs is down


class ServiceError(Exception):
    """A refusal the caller can act on: its kind, a stable reason code, a readable message."""

    def __init__(self, kind: Kind, code: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
