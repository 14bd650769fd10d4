"""The FastAPI application."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chain.errors import ChainError

from .api import errors
from .api.routes import codes, enterprises, health, materials, organisations, pages
from .runtime import Runtime
from .catalogue import Catalogue
from .services.anchoring import AnchorLoop, Anchorer
from .services.codes import CodeService
from .services.materials import MaterialService
from .services.enterprises import EnterpriseService

log = logging.getLogger("qiyema")

ROUTERS = (health.router, organisations.router, enterprises.router, codes.router, materials.router)


class Reconciler:
    """Background loop that brings the chain in line with the database (crash, chain outage,
    chain reset). One pass at start, then every `interval` seconds."""

    def __init__(self, service: EnterpriseService, interval: float):
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qiyema-reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self, older_than: float) -> None:
        ids = self.service.pending_ids(older_than=older_than)
        if ids:
            result = self.service.reconcile(ids)
            log.info("reconciled %d enterprise(s): %s", len(ids), result)

    def _run(self) -> None:
        older_than = 0.0  # at start every pending row is ours to finish
        while not self._stop.is_set():
            try:
                self.run_once(older_than)
            except ChainError as exc:
                log.warning("reconciliation deferred: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must survive to try again
                log.exception("reconciliation failed")
            older_than = max(self.interval, 2.0)
            self._stop.wait(self.interval)


def create_app(runtime: Runtime, *, reconcile: bool = True, close_runtime: bool = False) -> FastAPI:
    """The app on `runtime`. `reconcile` runs the background loops (chain reconciliation and
    anchoring); tests drive them by hand instead. With `close_runtime` the app's shutdown
    closes the runtime (and stops the managed node), which is how `qiyema serve` cleans up."""
    settings = runtime.settings
    service = EnterpriseService(runtime.sessions, runtime.chain, settings.register_batch_size)
    materials_service = MaterialService(runtime.sessions, runtime.chain, runtime.storage, Catalogue.load(settings.home))
    anchorer = Anchorer(runtime.sessions, runtime.chain, batch_size=settings.anchor_batch_size,
                        max_wait=settings.anchor_max_wait)
    reconciler = Reconciler(service, settings.reconcile_interval) if reconcile else None
    anchor_loop = AnchorLoop(anchorer, interval=min(0.5, settings.anchor_max_wait / 2)) if reconcile else None

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if reconciler:
            materials_service.reconcile_storage()
            reconciler.start()
            anchor_loop.start()
        yield
        if reconciler:
            reconciler.stop()
            anchor_loop.stop()
        if close_runtime:
            runtime.close()

    app = FastAPI(
        title="Qiyema 企业码 · 材料银行",
        version="0.1.0",
        description="Enterprise QR identity codes and a chain-anchored material bank.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.enterprises = service
    app.state.codes = CodeService(runtime.sessions, runtime.chain, runtime.settings)
    app.state.materials = materials_service
    app.state.anchorer = anchorer
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    return app
