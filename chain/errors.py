"""Typed chain errors: callers decide retry, 4xx or ERROR verdicts from the type alone."""

from __future__ import annotations


class ChainError(Exception):
    """Base class of every chain-layer error."""


class ChainUnreachable(ChainError):
    """The node did not answer (connection refused, reset, DNS, 5xx)."""


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
