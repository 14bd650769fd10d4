"""Dependencies: the runtime, a database session, and the caller's principal with role checks."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from materials_api.api.errors import ApiError
from materials_api.bank.access import AccessPolicy
from materials_api.bank.consent import ConsentService
from materials_api.bank.materials import MaterialService
from materials_api.codes.service import CodeService
from materials_api.codes.views import ScanViews
from materials_api.identity.accounts import AccountService, csrf_matches
from materials_api.identity.api_keys import Principal, authenticate
from materials_api.identity.models import Role
from materials_api.platform.errors import Kind
from materials_api.platform.metrics import Metrics
from materials_api.platform.models import ROW_ID_MAX, USCC_DESCRIPTION, USCC_SCHEMA
from materials_api.platform.runtime import Runtime
from materials_api.records.feed import RecordFeed
from materials_api.records.service import RecordService
from materials_api.registry.service import EnterpriseService

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer qk_...`")


# Dependencies that only read the app's state are `async def`: FastAPI runs a plain `def`
# dependency in the thread pool, and on the upload path those hand-offs (seven a request) cost
# more CPU than the work they wrapped. Those that read the database stay `def`.
async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


def _service(name: str):
    """A dependency handing a route the composition root's service `name` (see main.create_app)."""

    async def get(request: Request):
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


SESSION_COOKIE = "qiyema_session"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_principal(request: Request) -> Principal | None:
    """The signed-in person behind the session cookie, or None without a live session. A
    state-changing request must echo the session's CSRF token in `X-CSRF-Token`."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    found = request.app.state.accounts.session(secret)
    if found is None:
        return None
    principal, csrf, _user = found
    if request.method in _UNSAFE and not csrf_matches(csrf, request.headers.get("x-csrf-token")):
        raise ApiError(Kind.FORBIDDEN, "csrf_failed", "the request lacks this session's CSRF token (X-CSRF-Token)")
    return principal


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        principal = session_principal(request)
        if principal is None:
            raise ApiError(Kind.UNAUTHENTICATED, "auth_missing", "sign in, or send an API key: Authorization: Bearer <key>", challenge)
        return principal
    with request.app.state.runtime.sessions() as session:
        principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise ApiError(Kind.UNAUTHENTICATED, "auth_invalid", "the API key is unknown, malformed or revoked", challenge)
    return principal


def require_or_anonymous(*roles: Role):
    """Like `require`, for routes the public may call without a key (it then gets None); a key
    that is presented must still be valid."""
    allowed = frozenset(roles)

    async def _check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal | None:
        # Async: an anonymous call (most scans: no key, no session cookie) is answered without a
        # hand-off to the thread pool; a key or a session is looked up in the database there.
        if credentials is None:
            if SESSION_COOKIE not in request.cookies:
                return None
            principal = await run_in_threadpool(session_principal, request)
            if principal is None:
                return None
        else:
            principal = await run_in_threadpool(get_principal, request, credentials)
        if principal.role not in allowed:
            raise ApiError(Kind.FORBIDDEN, "role_forbidden", f"role {principal.role.value} may not do this")
        return principal

    _check.admitted_roles = allowed | {"anonymous"}
    return _check


def require(*roles: Role):
    """A dependency admitting only `roles`; every route declares the roles it admits with it."""
    allowed = frozenset(roles)

    async def _check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise ApiError(Kind.FORBIDDEN, "role_forbidden", f"role {principal.role.value} may not do this (admits: {names})")
        return principal

    _check.admitted_roles = allowed  # read by the test that checks every route declares its roles
    return _check


SessionDep = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
EnterprisesDep = Annotated[EnterpriseService, Depends(_service("enterprises"))]
CodesDep = Annotated[CodeService, Depends(_service("codes"))]
MaterialsDep = Annotated[MaterialService, Depends(_service("materials"))]
RecordsDep = Annotated[RecordService, Depends(_service("records"))]
RecordFeedDep = Annotated[RecordFeed, Depends(_service("record_feed"))]
ConsentDep = Annotated[ConsentService, Depends(_service("consent"))]
AccessDep = Annotated[AccessPolicy, Depends(_service("access"))]
ViewsDep = Annotated[ScanViews, Depends(_service("views"))]
AccountsDep = Annotated[AccountService, Depends(_service("accounts"))]
MetricsDep = Annotated[Metrics, Depends(_service("metrics"))]

# A row id in a path, bounded like RowIdValue: beyond it a 422, never the driver's overflow error.
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="a row id")]
BeforeRowId = Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="only rows older than this id (the next page)")]
UsccPath = Annotated[str, Path(description=USCC_DESCRIPTION, json_schema_extra=USCC_SCHEMA)]
UsccQuery = Annotated[str | None, Query(description="the enterprise's USCC (staff acting for one)",
                                        json_schema_extra=USCC_SCHEMA)]
