"""Reverts decoded: custom errors by the ABIs the client has seen, `Error(string)` and `Panic`,
from whichever shape web3.py, eth-tester or a node's JSON-RPC error hands them over in."""

from __future__ import annotations

import ast
import sys

from eth_abi import decode as abi_decode
from eth_utils import function_abi_to_4byte_selector
from web3 import Web3
from web3.exceptions import Web3RPCError

from .errors import ChainError, TransactionReverted


def tester_reverted() -> tuple[type, ...]:
    """py-evm through eth-tester reports reverts with its own exception type: that type once
    eth-tester is in use (whoever made the in-process chain imported it), else nothing.
    Importing it here would load all of py-evm — a second — into every command."""
    module = sys.modules.get("eth_tester.exceptions")
    return (module.TransactionFailed,) if module is not None else ()


class Reverts:
    def __init__(self):
        self._errors: dict[bytes, tuple[str, list[str]]] = {}

    def register(self, abi: list) -> None:
        """Learn the custom errors of an ABI so reverts decode to their names and arguments."""
        for item in abi:
            if item.get("type") == "error":
                selector = function_abi_to_4byte_selector(item)
                self._errors[selector] = (item["name"], [i["type"] for i in item["inputs"]])

    def decode(self, data: bytes | str | None) -> tuple[str, tuple]:
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        if not data:
            return ("Reverted", ())
        selector, payload = data[:4], data[4:]
        if selector == bytes.fromhex("08c379a0"):
            return ("Error", tuple(abi_decode(["string"], payload)))
        if selector == bytes.fromhex("4e487b71"):
            return ("Panic", tuple(abi_decode(["uint256"], payload)))
        if selector in self._errors:
            name, types = self._errors[selector]
            try:
                values = abi_decode(types, payload)
                return (name, tuple(Web3.to_checksum_address(v) if t == "address" else v
                                    for t, v in zip(types, values)))
            except Exception:  # noqa: BLE001 - malformed payload: still report the name
                return (name, ())
        return ("UnknownError", (data,))

    def from_call(self, exc: Exception, tx_hash: str | None = None) -> TransactionReverted:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(exc, tester_reverted()):
            # "execution reverted: b'...'" carries the raw revert data as a bytes literal.
            text = str(exc.args[0]) if exc.args else ""
            literal = text.partition("execution reverted: ")[2]
            if literal.startswith(("b'", 'b"')):
                data = "0x" + ast.literal_eval(literal).hex()
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            name, args = self.decode(data)
            return TransactionReverted(name, args, tx_hash=tx_hash, raw=data)
        return TransactionReverted("Error", (str(getattr(exc, "message", exc)),), tx_hash=tx_hash)

    def from_rpc(self, exc: Web3RPCError) -> ChainError:
        message = str(exc)
        data = None
        rpc = getattr(exc, "rpc_response", None) or {}
        err = rpc.get("error") if isinstance(rpc, dict) else None
        if isinstance(err, dict):
            data = err.get("data")
            if isinstance(data, dict):
                data = data.get("data")
        if "revert" in message.lower() or data:
            if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
                name, args = self.decode(data)
                return TransactionReverted(name, args, raw=data)
            return TransactionReverted("Error", (message,))
        return ChainError(f"node refused the transaction: {message}")
