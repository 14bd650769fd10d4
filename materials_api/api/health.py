"""Health and metrics: what a load balancer and the operations team poll, and the district page's
figures (drawn from the same counts) for the regulator."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from chain.deploy import code_status
from chain.errors import ChainError
from materials_api.api.deps import MetricsDep, RuntimeDep, require
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.platform.scan_hours import STATUSES
from materials_api.platform.timefmt import utc_iso
from materials_api.registry.models import Enterprise, EnterpriseStatus

router = APIRouter(tags=["health"])
log = logging.getLogger("qiyema")


@router.get("/healthz", summary="Chain, database and storage health, reported separately")
def healthz(runtime: RuntimeDep):
    report: dict = {}
    try:
        client = runtime.chain.client
        status = code_status(client, runtime.settings.deployments_dir)
        report["chain"] = {
            "ok": status.matches_build,
            "chain_id": client.chain_id,
            "block": client.block_number(),
            "contract": runtime.chain.deployment.address,
            "code": status.reason,
        }
    except ChainError as exc:  # the node's words may carry its URL: the log has them, a stranger does not
        log.warning("healthz: chain: %s", exc)
        report["chain"] = {"ok": False, "error": type(exc).__name__}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report["database"] = {"ok": True, "dialect": runtime.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        report["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        health = runtime.storage.health()  # its folder or error text stays in the log
        if not health.get("ok"):
            log.warning("healthz: storage: %s", health)
        report["storage"] = {"ok": bool(health.get("ok")), "kind": health.get("kind")}
    except Exception as exc:  # noqa: BLE001
        log.warning("healthz: storage: %s", exc)
        report["storage"] = {"ok": False, "error": type(exc).__name__}
    ok = all(part["ok"] for part in report.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **report}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics (a scraper key, made with `qiyema keys create --role scraper`)",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(metrics: MetricsDep, _: Annotated[Principal, Depends(require(Role.SCRAPER))]):
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/district", summary="The district at a glance (governor, registrar): code scans per hour "
                                        "by verdict over the last 24 hours, the chain head's age, the chain "
                                        "writes waiting and the enterprises by standing")
def district(request: Request, runtime: RuntimeDep, metrics: MetricsDep,
             _: Annotated[Principal, Depends(require(Role.GOVERNOR, Role.REGISTRAR))]):
    hours = request.app.state.scan_hours.last_hours(24)
    with runtime.sessions() as s:
        standing = dict(s.execute(select(Enterprise.status, func.count()).group_by(Enterprise.status)).all())
    scans = {st: sum(h[st] for h in hours) for st in STATUSES}
    total = sum(scans.values())
    return {
        "generated_at": utc_iso(datetime.fromtimestamp(runtime.clock.time(), timezone.utc)),
        "hours": [{"hour": utc_iso(datetime.fromtimestamp(h["hour"], timezone.utc)),
                   **{st: h[st] for st in STATUSES}} for h in hours],
        "scans_24h": scans,
        "invalid_rate": scans["INVALID"] / total if total else 0.0,
        "error_rate": scans["ERROR"] / total if total else 0.0,
        "chain_head_age_seconds": metrics.head_age(),
        "outbox": {kind: {"waiting": n, "oldest_seconds": round(oldest, 1)}
                   for kind, (n, oldest) in metrics.backlogs().items()},
        "standing": {status.value: standing.get(status.value, 0) for status in EnterpriseStatus},
    }
