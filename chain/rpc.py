"""Plain JSON-RPC over one keep-alive HTTP connection per thread: the read path of verification.

web3.py's contract objects cost milliseconds of Python per call (ABI lookups, formatters,
middleware); a node answers an `eth_call` in about 0.1 ms. Verifiers therefore encode and decode
their few calls themselves and send them here; errors come back as the chain layer's own
(`ChainUnreachable`, `ChainNotAnswering` via `TimeoutError`, `RpcError`), so `ChainClient`'s
retries and circuit breaker apply unchanged."""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

from .errors import ChainError, ChainUnreachable


class RpcError(ChainError):
    """The node answered with a JSON-RPC error (a revert carries its data)."""

    def __init__(self, code: int, message: str, data=None):
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.rpc_code = code  # the JSON-RPC error code (a refusal of the node, not of Qiyema)
        self.message = message
        self.data = data.get("data") if isinstance(data, dict) else data


class JsonRpc:
    def __init__(self, url: str, timeout: float = 3.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP JSON-RPC URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self.timeout = timeout
        self._local = threading.local()
        self._ids = iter(range(1, 1 << 62))

    def request(self, method: str, params: list):
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        return _result(reply)

    def batch(self, calls: list[tuple[str, list]]) -> list:
        """Several calls in one HTTP request; results in the order asked (an error raises)."""
        if not calls:
            return []
        first = next(self._ids)
        payload = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        for _ in range(len(calls) - 1):
            next(self._ids)
        replies = self._post(payload)
        if not isinstance(replies, list):  # a node that refuses the whole batch answers one error
            _fail(replies)
        by_id = {r.get("id"): r for r in replies}
        return [_result(by_id.get(first + i, {"error": {"code": -32603, "message": "no answer in batch"}}))
                for i in range(len(calls))]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- transport ----------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._local.conn = cls(self._host, self._port, timeout=self.timeout)
        return conn

    def _post(self, payload):
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        # A kept-alive connection the node closed meanwhile fails on first use: one fresh retry.
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                continue
            except BaseException:
                self.close()  # a half-read response would poison the next request
                raise
            if response.status >= 500:
                self.close()
                raise ChainUnreachable(f"chain node answered HTTP {response.status}")
            try:
                return json.loads(data)
            except ValueError:
                raise ChainUnreachable(f"chain node answered HTTP {response.status} with no JSON") from None
        raise AssertionError("unreachable")  # pragma: no cover


def _result(reply: dict):
    if "error" in reply and reply["error"] is not None:
        _fail(reply)
    return reply.get("result")


def _fail(reply: dict):
    err = reply.get("error") or {}
    raise RpcError(int(err.get("code", -32603)), str(err.get("message", "error")), err.get("data"))
