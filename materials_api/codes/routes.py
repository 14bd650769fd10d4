"""Enterprise codes over HTTP: the static code image, dynamic (亮码) codes, verifying a scanned code
with the view its caller may see, and the registrar key set for offline verification."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select

from codes import render
from materials_api.api.deps import (
    AccessDep,
    CodesDep,
    ConsentDep,
    MaterialsDep,
    MetricsDep,
    RuntimeDep,
    UsccPath,
    ViewsDep,
    require,
    require_or_anonymous,
)
from materials_api.api.errors import ApiError
from materials_api.codes.schemas import (
    AffectedEnterprise,
    CodeKeyPublic,
    ConsentScope,
    DynamicCodeCreate,
    DynamicCodePublic,
    StaticCodeStatus,
    VerdictPublic,
    VerifyCodeRequest,
)
from materials_api.identity.api_keys import Principal
from materials_api.identity.models import Role
from materials_api.platform.errors import Kind
from materials_api.registry.models import Enterprise

router = APIRouter(prefix="/api/v1", tags=["codes"])
log = logging.getLogger("qiyema.verify")

EVERYONE = tuple(Role)


def _own_code_only(principal: Principal, uscc: str) -> None:
    if principal.role is Role.ENTERPRISE and principal.scope != uscc.strip().upper():
        raise ApiError(Kind.FORBIDDEN, "not_your_enterprise", "an enterprise key acts only for its own USCC")


@router.get("/enterprises/{uscc}/code.{fmt}", summary="The static code as PNG or SVG",
            responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}})
def static_code_image(uscc: UsccPath, fmt: Literal["png", "svg"], service: CodesDep,
                      principal: Annotated[Principal, Depends(require(Role.REGISTRAR, Role.CLERK, Role.GOVERNOR,
                                                                        Role.ENTERPRISE))]):
    _own_code_only(principal, uscc)
    url, enterprise = service.static_code(uscc)
    if fmt == "svg":
        return Response(render.render_svg(url, enterprise.name, enterprise.uscc), media_type="image/svg+xml")
    return Response(render.render_png(url, enterprise.name, enterprise.uscc), media_type="image/png")


@router.get("/codes/static/status", response_model=StaticCodeStatus,
            summary="Whether the caller's enterprise must replace its printed code (a compromised key signed it)")
def static_code_status(service: CodesDep, access: AccessDep,
                       principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    enterprise = access.acting_for(principal, None, "code_status", read=True)
    return StaticCodeStatus(uscc=enterprise.uscc, replace_code=service.needs_new_code(enterprise.id),
                            active_kid=service.active_key().kid)


@router.post("/codes/dynamic", status_code=201, response_model=DynamicCodePublic,
             summary="Issue a short-lived dynamic code (亮码) for the caller's enterprise")
def issue_dynamic_code(body: DynamicCodeCreate, service: CodesDep, consent: ConsentDep, runtime: RuntimeDep,
                       materials: MaterialsDep, access: AccessDep,
                       principal: Annotated[Principal, Depends(require(Role.ENTERPRISE))]):
    scope = body.scope.model_dump(exclude_defaults=True) if body.scope else None
    if scope:
        enterprise = access.acting_for(principal, None, "code_issue", read=False)
        if body.scope.grant_id is not None:
            grant = access.own_grant(principal, enterprise, body.scope.grant_id, "code_issue")
            if not access.grant_active(grant):
                raise ApiError(Kind.CONFLICT, "grant_inactive", f"grant {grant.id} is revoked or expired")
        elif body.scope.verifier_org and (body.scope.material_ids or body.scope.material_types):
            # The code carries a grant: made here from the scope, revocable like any other.
            # It lives no longer than the code that carries it (a longer consent is a grant of
            # its own, POST /consents, named by grant_id).
            code_ends = int(runtime.clock.time()) + (body.ttl_seconds or runtime.settings.dynamic_code_ttl)
            grant = consent.grant(enterprise, principal, verifier_organisation=body.scope.verifier_org,
                                  material_ids=body.scope.material_ids, material_types=body.scope.material_types,
                                  purpose=body.scope.purpose or "亮码授权",
                                  expires_at=min(body.scope.expires_at or code_ends, code_ends),
                                  known_types=set(materials.catalogue.types))
            scope["grant_id"] = grant.id
    url, row = service.issue_dynamic(principal.scope, ttl=body.ttl_seconds, single_use=body.single_use,
                                     scope=scope or None, actor_key_id=principal.key_id)
    with runtime.sessions() as s:
        name = s.scalar(select(Enterprise.name).where(Enterprise.uscc == principal.scope)) or ""
    return DynamicCodePublic(code=url, nonce=row.nonce, issued_at=row.issued_at, expires_at=row.expires_at,
                             single_use=row.single_use, scope=ConsentScope(**scope) if scope else None,
                             qr_version=render.qr_version(url), svg=render.render_svg(url, name, principal.scope))


@router.post("/verify/code", response_model=VerdictPublic,
             summary="Verify a scanned code (anyone); the answer carries the caller's role's view")
async def verify_code(body: VerifyCodeRequest, service: CodesDep, views: ViewsDep, metrics: MetricsDep,
                      principal: Annotated[Principal | None, Depends(require_or_anonymous(*EVERYONE))]):
    # Anonymous scans of static codes (most scans) reuse an answer while nothing behind it moved:
    # checked here, on the event loop (the stamp is one indexed read), so such a scan costs no
    # hand-off to the thread pool. Anything else is built there in full; dynamic codes always are
    # (expiry, single use).
    enterprise_id = service.static_enterprise_id(body.code) if principal is None else None
    stamp = None
    if enterprise_id is not None:
        stamp = views.stamp(enterprise_id)  # read once, before anything is built from it
        cached = views.cached_answer(body.code, enterprise_id, stamp)
        if cached is not None:
            summary, encoded = cached
            metrics.verdict("code", summary)
            return Response(encoded, media_type="application/json")
    return await run_in_threadpool(_verify_code, body.code, service, views, metrics, principal, enterprise_id, stamp)


def _verify_code(code: str, service, views, metrics, principal: Principal | None, enterprise_id: int | None,
                 stamp: tuple | None):
    verdict = service.verify(code)
    metrics.verdict("code", verdict)
    if verdict.status.value != "VALID":
        # Forged, copied, expired or replayed codes are security events: keep a trace.
        log.warning("code verification %s for %s by %s: %s", verdict.status.value, verdict.facts.get("uscc") or "-",
                    principal.organisation if principal else "anonymous",
                    ",".join(c.reason for c in verdict.checks if c.status.value != "VALID"))
    out = verdict.as_dict()
    out["view"] = views.view(verdict, principal, {enterprise_id: stamp} if stamp is not None else None)
    if enterprise_id is None:
        return out
    # Kept encoded (as the response model would send it): a repeat scan sends the bytes as they
    # are, and the cache holds bytes, not a tree of objects. Remembered whatever the verdict (also
    # clears this code's "refreshing" mark); the stamp makes any change behind it visible to the
    # next scan.
    encoded = VerdictPublic.model_validate(out).model_dump_json().encode()  # compact UTF-8 JSON
    summary = {"status": out["status"], "checks": [{"status": c["status"], "reason": c["reason"]}
                                                   for c in out["checks"]]}
    views.remember_answer(code, (summary, encoded), stamp)
    return Response(encoded, media_type="application/json")


@router.get("/codes/keyset", summary="Registrar keys for offline verification, signed by the governor")
def code_keyset(service: CodesDep, _: Annotated[Principal | None, Depends(require_or_anonymous(*EVERYONE))]):
    return service.keyset().to_json()


@router.get("/codes/trust-list", summary="The deployments (chain id, contract) verifiers accept, signed by the governor")
def trust_list(runtime: RuntimeDep, _: Annotated[Principal | None, Depends(require_or_anonymous(*EVERYONE))]):
    return runtime.chain.trust_list.to_json()


@router.post("/codes/keys/rotate", response_model=CodeKeyPublic,
             summary="Rotate the static-code key (governor); codes signed before keep verifying")
def rotate_code_key(service: CodesDep, _: Annotated[Principal, Depends(require(Role.GOVERNOR))]):
    return CodeKeyPublic.of(service.rotate_static_key())


@router.post("/codes/keys/{kid}/compromise", response_model=CodeKeyPublic,
             summary="Declare a static-code key compromised (governor): every code it signed verifies INVALID")
def compromise_code_key(kid: Annotated[int, Path(ge=1, le=1024)], service: CodesDep,
                        _: Annotated[Principal, Depends(require(Role.GOVERNOR))]):
    return CodeKeyPublic.of(service.compromise_static_key(kid))


@router.get("/codes/keys/{kid}/enterprises", response_model=list[AffectedEnterprise],
            summary="Enterprises whose static code a key signed (governor, registrar): who needs a new code")
def code_key_enterprises(kid: Annotated[int, Path(ge=1, le=1024)], service: CodesDep,
                         _: Annotated[Principal, Depends(require(Role.GOVERNOR, Role.REGISTRAR))]):
    return [AffectedEnterprise(uscc=e.uscc, name=e.name) for e in service.affected_by(kid)]
