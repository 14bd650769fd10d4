"""The service's outer edge, before any route runs: body caps and per-address rate limits.

- **Body caps.** A JSON or form body larger than its route's cap is refused 413 `too_large`
  from its declared length before a byte is read, and, when no length is declared (chunked),
  as soon as the bytes read pass the cap; nothing is parsed. The caps: `max_body_bytes`
  (1 MiB) for every call, `max_batch_body_bytes` for the two batch calls (`/records/batch`,
  `/verify/materials`). Multipart uploads are capped while they stream, by their routes
  (`max_upload_bytes`; anonymous `/verify/material` files: `max_verify_upload_bytes`).
- **Rate limits.** Anonymous verification (`POST /api/v1/verify/*`, the pages `/V/…`) and
  sign-in (`POST /login`) are limited per client address (an IPv6 client per /64): a token
  bucket of `rate_limit_*_per_minute` tokens refilled evenly, 429 `rate_limited` with
  `Retry-After` when empty. A caller with an API key is not limited here (a key is checked
  before anything is verified, and can be revoked). Behind a reverse proxy the client is the right-most `X-Forwarded-For`
  address that is not one of `trusted_proxies`. The buckets live in this process (one set per
  worker); the addresses kept are bounded (least recently seen forgotten first).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from collections import OrderedDict

from starlette.exceptions import HTTPException

from materials_api.platform.config import Settings

_JSON_BATCH_PATHS = {"/api/v1/records/batch", "/api/v1/verify/materials"}
# Uploads stream and are capped by their routes (api/upload.py), file by file. Exactly these
# calls: a multipart body sent anywhere else is capped like any other body.
_UPLOAD_CALLS = re.compile(r"/api/v1/(?:materials|materials/\d+/versions|inspections|verify/material)")
MAX_ADDRESSES = 100_000


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than this call's limit of {limit} bytes")


def client_address(scope, trusted_proxies: frozenset[str]) -> str:
    """The caller's address (a /64 for IPv6), seen through the proxies the operator trusts."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if peer in trusted_proxies:
        forwarded = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"), "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if hop not in trusted_proxies:
                peer = hop
                break
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    """Token buckets per (kind, address): `per_minute` tokens, refilled evenly; bounded memory."""

    def __init__(self, per_minute: dict[str, int], max_addresses: int = MAX_ADDRESSES):
        self.per_minute = per_minute
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, kind: str, address: str, now: float | None = None) -> float:
        """0 when allowed (a token taken), else the seconds until the next token."""
        rate = self.per_minute.get(kind, 0)
        if rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        per_second = rate / 60.0
        key = (kind, address)
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - at) * per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / per_second
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
            return wait


class Edges:
    """ASGI middleware: body caps and rate limits, answered before the app sees the request."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.trusted = frozenset(settings.trusted_proxies)
        self.limiter = RateLimiter({"verify": settings.rate_limit_verify_per_minute,
                                    "sign_in": settings.rate_limit_sign_in_per_minute})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        headers = scope["headers"]
        kind = _limited_kind(method, path, headers)
        if kind is not None and self.limiter.per_minute.get(kind, 0) > 0:
            wait = self.limiter.take(kind, client_address(scope, self.trusted))
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                return await _refuse(send, 429, "rate_limited",
                                     f"too many requests from this address; try again in {retry} s",
                                     [(b"retry-after", retry.encode())])
        if method in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        content_type = next((v for k, v in headers if k == b"content-type"), b"")
        if content_type.startswith(b"multipart/") and method == "POST" and _UPLOAD_CALLS.fullmatch(path):
            return await self.app(scope, receive, send)
        limit = self.settings.max_batch_body_bytes if path in _JSON_BATCH_PATHS else self.settings.max_body_bytes
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                return await _refuse(send, 413, "too_large", str(BodyTooLarge(limit).detail))
            # The server frames the body by its declared length: nothing more can arrive.
            return await self.app(scope, receive, send)
        read = 0

        async def counted():
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise BodyTooLarge(limit)
            return message

        return await self.app(scope, counted, send)


def _limited_kind(method: str, path: str, headers) -> str | None:
    if method == "POST" and path == "/login":
        return "sign_in"
    if (method == "POST" and path.startswith("/api/v1/verify/")) or (method == "GET" and path[:3] in ("/V/", "/v/")):
        # A key is checked before anything is verified (a made-up one is refused 401); a session
        # cookie is not exempt (a made-up cookie is just anonymous), so people share their address's.
        return None if any(k == b"authorization" for k, _ in headers) else "verify"
    return None


async def _refuse(send, status: int, code: str, message: str, extra: list | None = None) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
