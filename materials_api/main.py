"""The FastAPI application: the services of the composition root behind one router per resource."""

from __future__ import annotations

import gc
import logging
import time
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from materials_api.api import errors, health
from materials_api.api.edges import Edges
from materials_api.bank import routes as materials
from materials_api.codes import routes as codes
from materials_api.identity import routes as organisations
from materials_api.platform.metrics import Metrics, new_request_id, request_id
from materials_api.platform.runtime import Runtime
from materials_api.records import routes as records
from materials_api.registry import routes as enterprises
from materials_api.root import Services
from materials_api.web import certificates, pages, people

access = logging.getLogger("qiyema.access")  # one line per request: method, route template, status, time

ROUTERS = (health.router, organisations.router, enterprises.router, codes.router, materials.router, records.router)


def create_app(runtime: Runtime, *, services: Services | None = None, reconcile: bool = True,
               close_runtime: bool = False) -> FastAPI:
    """The app on `runtime`. `reconcile` runs the background loops (chain reconciliation and
    anchoring) in this process; tests drive them by hand, and `qiyema serve --workers N` runs
    them once in the parent. With `close_runtime` the app's shutdown closes the runtime (and
    stops the managed node), which is how `qiyema serve` cleans up."""
    services = services or Services.build(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        # What is alive once the app is built (modules, the ORM's and FastAPI's models: ~190,000
        # objects) lives as long as the process. Frozen, the collector no longer walks it: a full
        # collection went from ~120 ms, a pause every request in flight waited out (the scans'
        # p99), to the objects made since.
        warm = getattr(runtime.storage, "warm", None)
        if warm is not None:
            await anyio.to_thread.run_sync(warm)  # the wrapping key opened before the first upload waits on it
        gc.collect()
        gc.freeze()
        background = services.start_background(runtime) if reconcile else None
        yield
        if background is not None:
            background.stop()
        if close_runtime:
            runtime.close()

    app = FastAPI(
        title="Qiyema 企业码 · 材料银行",
        version="0.1.0",
        description="Enterprise QR identity codes and a chain-anchored material bank.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics = Metrics()
    services.observe(metrics, runtime)
    for name, service in vars(services).items():  # what api/deps.py hands to the routes
        setattr(app.state, name, service)
    errors.install(app)
    errors.document(app)

    app.add_middleware(Edges, settings=runtime.settings)  # inside Observed: refusals are counted and stamped
    app.add_middleware(Observed, metrics=metrics)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    app.include_router(certificates.router)
    app.include_router(people.router)
    return app


# Pages load only the service's own scripts, styles and pictures (no inline script or style, no
# frame around them): a file or field that smuggles markup in runs nothing.
PAGE_POLICY = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
               b"media-src 'self' blob:; connect-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
               b"form-action 'self'; frame-ancestors 'none'")
# Anything else (JSON, pictures, downloads) is never a document: even opened directly, nothing runs.
OTHER_POLICY = b"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"


# The API's reference pages (FastAPI's Swagger UI and ReDoc) load their viewer from its CDN and
# start it with an inline script; they show no one's data, and only they get this policy.
DOCS_POLICY = (b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
               b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
               b"https://cdn.redoc.ly; worker-src blob:; connect-src 'self'; object-src 'none'; "
               b"frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/redoc")
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
_FOR_PAGES = [*_COMMON, (b"content-security-policy", PAGE_POLICY)]
_FOR_OTHERS = [*_COMMON, (b"content-security-policy", OTHER_POLICY)]
_FOR_DOCS = [*_COMMON, (b"content-security-policy", DOCS_POLICY)]


def _hardened(headers: list[tuple[bytes, bytes]], path: str = "") -> list[tuple[bytes, bytes]]:
    """Every answer: never content-sniffed, never framed, no referrer carrying a code's URL to
    another site (constant headers added on every response: no route sets these itself)."""
    for k, v in headers:
        if k == b"content-type":
            if not v.startswith(b"text/html"):
                return headers + _FOR_OTHERS
            return headers + (_FOR_DOCS if path.startswith(_DOCS_PATHS) else _FOR_PAGES)
    return headers + _FOR_OTHERS


class Observed:
    """Every response carries its request id (the caller's, if plain enough, else a new one) and
    every log line written meanwhile says it; latency is counted per route template. Plain ASGI,
    not `@app.middleware("http")`, whose extra task and streams per request cost about a
    millisecond of CPU on every upload."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        presented = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = new_request_id(presented)
        started = time.perf_counter()
        status = [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = _hardened([*message.get("headers", ()), (b"x-request-id", rid.encode())],
                                               scope["path"])
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status[0])).observe(seconds)
            access.info("%s %s %d %.1f ms", scope["method"], route, status[0], seconds * 1000)
            request_id.reset(token)


def worker_app() -> FastAPI:
    """A worker process of `qiyema serve --workers N`: the parent started the node, migrated and
    deployed; workers serve requests only."""
    from materials_api.platform.config import Settings
    from materials_api.platform.metrics import JsonFormatter

    if not logging.getLogger().handlers:  # a fresh worker process: log as the parent does
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    return create_app(Runtime.open(Settings(), start_node=False), reconcile=False, close_runtime=True)
