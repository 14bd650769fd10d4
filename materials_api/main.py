"""The FastAPI application: the services of the composition root behind one router per resource."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from materials_api.api import errors, health
from materials_api.bank import routes as materials
from materials_api.codes import routes as codes
from materials_api.identity import routes as organisations
from materials_api.platform.runtime import Runtime
from materials_api.records import routes as records
from materials_api.registry import routes as enterprises
from materials_api.root import Services
from materials_api.web import pages, people

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
    for name, service in vars(services).items():  # what api/deps.py hands to the routes
        setattr(app.state, name, service)
    errors.install(app)
    errors.document(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages.router)
    app.include_router(people.router)
    return app


def worker_app() -> FastAPI:
    """A worker process of `qiyema serve --workers N`: the parent started the node, migrated and
    deployed; workers serve requests only."""
    from materials_api.platform.config import Settings

    return create_app(Runtime.open(Settings(), start_node=False), reconcile=False, close_runtime=True)
