"""The FastAPI application."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from .api import errors
from .api.routes import codes, enterprises, health, materials, organisations, pages, people, records
from .runtime import Runtime
from .catalogue import Catalogue
from .background import BackgroundLoop
from .coordination import LeaderLease
from .services.accounts import AccountService
from .services.anchoring import Anchorer
from .services.codes import CodeService
from .services.access import AccessPolicy
from .services.consent import ConsentService
from .services.materials import MaterialService
from .services.records import RecordService
from .services.views import ScanViews
from .services.enterprises import EnterpriseService

log = logging.getLogger("qiyema")

ROUTERS = (health.router, organisations.router, enterprises.router, codes.router, materials.router, records.router)


def reconcile_step(service: EnterpriseService, interval: float):
    """Bring the chain in line with the database. At start every pending row is ours to finish;
    later only rows untouched for a while, so a request's own fresh row is left to it."""
    state = {"older_than": 0.0}

    def step() -> None:
        ids = service.pending_ids(older_than=state["older_than"])
        if ids:
            log.info("reconciled %d enterprise(s): %s", len(ids), service.reconcile(ids))
        state["older_than"] = max(interval, 2.0)

    return step


def anchor_step(anchorer: Anchorer):
    """Anchor what is due; the first successful pass also re-anchors what a reset chain lost."""
    state = {"reconciled": False}

    def step() -> None:
        if not state["reconciled"]:
            anchorer.reconcile_all()
            state["reconciled"] = True
        anchorer.run_once()

    return step


def records_step(records: RecordService):
    """Witness pending records; the first successful pass also re-issues what a reset chain lost."""
    state = {"checked": False}

    def step() -> None:
        if not state["checked"]:
            records.requeue_lost()
            state["checked"] = True
        records.reconcile()

    return step


@dataclass
class Services:
    enterprises: EnterpriseService
    materials: MaterialService
    records: RecordService
    anchorer: Anchorer

    @classmethod
    def build(cls, runtime: Runtime) -> "Services":
        settings = runtime.settings
        return cls(
            enterprises=EnterpriseService(runtime.sessions, runtime.chain, settings.register_batch_size),
            materials=MaterialService(runtime.sessions, runtime.chain, runtime.storage, Catalogue.load(settings.home),
                                      max_head_age=settings.chain_max_head_age),
            records=RecordService(runtime.sessions, runtime.chain, settings),
            anchorer=Anchorer(runtime.sessions, runtime.chain, batch_size=settings.anchor_batch_size,
                              max_wait=settings.anchor_max_wait),
        )

    def background_loops(self, settings, lease: LeaderLease | None = None) -> list[BackgroundLoop]:
        """The work one instance per deployment runs beside the API (the holder of the
        background lease): chain reconciliation, anchoring and record witnessing."""
        return [
            BackgroundLoop("reconciler", reconcile_step(self.enterprises, settings.reconcile_interval),
                           settings.reconcile_interval, lease=lease),
            BackgroundLoop("anchorer", anchor_step(self.anchorer), min(0.5, settings.anchor_max_wait / 2),
                           lease=lease),
            BackgroundLoop("records", records_step(self.records), settings.reconcile_interval, lease=lease),
        ]

    def start_background(self, runtime: Runtime) -> "BackgroundWork":
        """Start the background loops; they work only while this instance holds the lease, so
        any number of instances may run them and exactly one is active."""
        self.materials.reconcile_storage()
        lease = LeaderLease(runtime.sessions, "background", ttl=runtime.settings.leader_lease_ttl)
        lease.try_acquire()
        lease.start()
        loops = self.background_loops(runtime.settings, lease)
        for loop in loops:
            loop.start()
        return BackgroundWork(lease, loops)


@dataclass
class BackgroundWork:
    lease: LeaderLease
    loops: list[BackgroundLoop]

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        self.lease.stop()  # released: another instance takes over at once


def create_app(runtime: Runtime, *, reconcile: bool = True, close_runtime: bool = False) -> FastAPI:
    """The app on `runtime`. `reconcile` runs the background loops (chain reconciliation and
    anchoring) in this process; tests drive them by hand, and `qiyema serve --workers N` runs
    them once in the parent. With `close_runtime` the app's shutdown closes the runtime (and
    stops the managed node), which is how `qiyema serve` cleans up."""
    services = Services.build(runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
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
    app.state.enterprises = services.enterprises
    app.state.codes = CodeService(runtime.sessions, runtime.chain, runtime.settings)
    app.state.materials = services.materials
    app.state.records = services.records
    app.state.access = AccessPolicy(runtime.sessions)
    app.state.consent = ConsentService(runtime.sessions, app.state.access)
    app.state.views = ScanViews(runtime.sessions, services.records, app.state.access, services.materials)
    app.state.anchorer = services.anchorer
    settings = runtime.settings
    app.state.accounts = AccountService(runtime.sessions, session_ttl=settings.session_ttl,
                                        max_failures=settings.login_max_failures,
                                        lockout_seconds=settings.login_lockout_seconds)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    app.include_router(people.router)
    return app


def worker_app() -> FastAPI:
    """A worker process of `qiyema serve --workers N`: the parent started the node, migrated and
    deployed; workers serve requests only."""
    from .config import Settings

    return create_app(Runtime.open(Settings(), start_node=False), reconcile=False, close_runtime=True)
