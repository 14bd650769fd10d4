"""Dependencies: the runtime, a database session, and the caller's principal with role checks."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from materials_api.api.errors import ApiError
from materials_api.platform.errors import Kind
from materials_api.bank.access import AccessPolicy
from materials_api.bank.consent import ConsentService
from materials_api.bank.materials import MaterialService
from materials_api.codes.service import CodeService
from materials_api.codes.views import ScanViews
from materials_api.identity.accounts import AccountService, csrf_matches
from materials_api.identity.api_keys import Principal, authenticate
from materials_api.identity.models import Role
from materials_api.platform.runtime import Runtime
from materials_api.records.service import RecordService
from materials_api.registry.service import EnterpriseService

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer qk_...`")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


def get_enterprises(request: Request) -> EnterpriseService:
    return request.app.state.enterprises


def get_codes(request: Request) -> CodeService:
    return request.app.state.codes


def get_materials(request: Request) -> MaterialService:
    return request.app.state.materials


def get_records(request: Request) -> RecordService:
    return request.app.state.records


def get_consent(request: Request) -> ConsentService:
    return request.app.state.consent


def get_access(request: Request) -> AccessPolicy:
    return request.app.state.access


def get_views(request: Request) -> ScanViews:
    return request.app.state.views


SESSION_COOKIE = "qiyema_session"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_accounts(request: Request) -> AccountService:
    return request.app.state.accounts


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
    session: Annotated[Session, Depends(get_session)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        principal = session_principal(request)
        if principal is None:
            raise ApiError(Kind.UNAUTHENTICATED, "auth_missing", "sign in, or send an API key: Authorization: Bearer <key>", challenge)
        return principal
    principal = authenticate(session, credentials.credentials)
    if principal is None:
        raise ApiError(Kind.UNAUTHENTICATED, "auth_invalid", "the API key is unknown, malformed or revoked", challenge)
    return principal


def require_or_anonymous(*roles: Role):
    """Like `require`, for routes the public may call without a key (it then gets None); a key
    that is presented must still be valid."""
    allowed = frozenset(roles)

    def _check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        session: Annotated[Session, Depends(get_session)],
    ) -> Principal | None:
        if credentials is None:
            principal = session_principal(request)
            if principal is None:
                return None
        else:
            principal = get_principal(request, credentials, session)
        if principal.role not in allowed:
            raise ApiError(Kind.FORBIDDEN, "role_forbidden", f"role {principal.role.value} may not do this")
        return principal

    _check.admitted_roles = allowed | {"anonymous"}
    return _check


def require(*roles: Role):
    """A dependency admitting only `roles`; every route declares the roles it admits with it."""
    allowed = frozenset(roles)

    def _check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise ApiError(Kind.FORBIDDEN, "role_forbidden", f"role {principal.role.value} may not do this (admits: {names})")
        return principal

    _check.admitted_roles = allowed  # read by the test that checks every route declares its roles
    return _check


SessionDep = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
EnterprisesDep = Annotated[EnterpriseService, Depends(get_enterprises)]
CodesDep = Annotated[CodeService, Depends(get_codes)]
MaterialsDep = Annotated[MaterialService, Depends(get_materials)]
RecordsDep = Annotated[RecordService, Depends(get_records)]
ConsentDep = Annotated[ConsentService, Depends(get_consent)]
AccessDep = Annotated[AccessPolicy, Depends(get_access)]
ViewsDep = Annotated[ScanViews, Depends(get_views)]
AccountsDep = Annotated[AccountService, Depends(get_accounts)]
