"""The one error base of Qiyema, and the chain layer's typed errors.

`QiyemaError` is a refusal or failure a caller can act on: its kind (what sort of refusal), a
stable reason code and a readable message. Everything above builds on it: bad input to the
libraries (a USCC, a code, a proof bundle, a photo), the service's refusals, the HTTP layer's
own; the HTTP layer alone turns a kind into a status (`materials_api/api/errors.py`), the CLI
into a message and a non-zero exit. Chain errors below say what went wrong with a node, from
which callers decide retry, 4xx or an ERROR verdict.
"""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    """What sort of refusal: the caller's input, its rights, the object's state, or a part down."""

    INVALID = "invalid"                  # the request is well formed but its content is wrong
    MALFORMED = "malformed"              # the request itself cannot be read
    TOO_LARGE = "too_large"              # more than the service takes in one request
    UNAUTHENTICATED = "unauthenticated"  # who is calling could not be established
    FORBIDDEN = "forbidden"              # known caller, not allowed
    NOT_FOUND = "not_found"              # no such object (or not one the caller may know of)
    CONFLICT = "conflict"                # the object's state does not allow it (now)
    UNSUPPORTED = "unsupported"          # a kind of content the service does not take
    LOCKED = "locked"                    # temporarily refused (an account locked after failures)
    UNAVAILABLE = "unavailable"          # a part the answer needs is down


class QiyemaError(Exception):
    """A refusal the caller can act on. `detail` carries extra fields for the caller (the
    position of a wrong USCC character, for instance)."""

    def __init__(self, kind: Kind, code: str, message: str, **detail):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.detail = {k: v for k, v in detail.items() if v is not None}


class InputError(QiyemaError, ValueError):
    """Input that is not what it claims to be: a USCC, a code, a proof bundle, a photo."""

    def __init__(self, code: str, message: str, **detail):
        super().__init__(Kind.INVALID, code, message, **detail)


class ChainError(Exception):
    """Base class of every chain-layer error."""


class ChainUnreachable(ChainError):
    """The node did not answer (connection refused, reset, DNS, 5xx)."""


class ChainNotAnswering(ChainUnreachable):
    """The node accepted the connection but did not answer within the request time-out (a hung
    or overloaded node), or it did so a moment ago and is not asked again yet (circuit open)."""


class ChainAnswerMalformed(ChainError):
    """The node answered, but not as the contract would: no code at the address (a node that
    lost its state), output that does not decode. Liveness, not forgery: verifiers say ERROR."""


class ChainTimeout(ChainError):
    """The node answered, but what we waited for (receipt, confirmations) did not come in time."""


class TransactionReverted(ChainError):
    """The EVM reverted. `error` is the decoded custom error name, `args` its arguments."""

    def __init__(self, error: str, args: tuple = (), tx_hash: str | None = None, raw: str | None = None):
        self.error = error
        self.args_ = tuple(args)
        self.tx_hash = tx_hash
        self.raw = raw
        detail = f"{error}({', '.join(_fmt(a) for a in self.args_)})"
        super().__init__(f"transaction reverted: {detail}" + (f" in {tx_hash}" if tx_hash else ""))


class DeploymentMismatch(ChainError):
    """The code at the recorded address is not the code this build compiles."""


def _fmt(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return repr(value)
