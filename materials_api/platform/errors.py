"""The service's refusals: `ServiceError`s of a `Kind`, on the one error base (`chain.errors.QiyemaError`).
The HTTP layer alone turns a kind into a status (`api/errors.py`), the CLI into a message and a
non-zero exit."""

from __future__ import annotations

from chain.errors import Kind, QiyemaError

__all__ = ["Kind", "ServiceError"]


class ServiceError(QiyemaError):
    """A domain service's refusal: its kind, a stable reason code, a readable message."""
