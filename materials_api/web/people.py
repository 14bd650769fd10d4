"""Pages for people, signed in: the enterprise portal (/portal), the service-window page for
clerks (/window), the inspector's phone page (/inspect), the bank's page (/bank) and the
regulator's district page (/district), plus sign-in itself (password or
OpenID Connect). The pages are HTML shells (templates/); their scripts (static/, ES modules) call the same
JSON API as machines do, authorised by the session cookie and its CSRF token. Nothing is
fetched from outside: scripts, styles and the QR decoder (jsQR, from npm) are served here."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from chain.compile import NODE_MODULES
from materials_api.api.deps import SESSION_COOKIE, AccountsDep, MetricsDep
from materials_api.api.edges import client_address
from materials_api.api.errors import ApiError, http_status
from materials_api.identity.accounts import AccountError
from materials_api.identity.models import Role
from materials_api.identity.oidc import OidcClient, OidcError
from materials_api.platform.errors import Kind
from materials_api.web.render import HOME, page

router = APIRouter(tags=["pages"], include_in_schema=False)

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".css": "text/css", ".js": "text/javascript"}
ASSETS = {p.name: _TYPES[p.suffix] for p in STATIC.iterdir() if p.suffix in _TYPES}  # fixed at start: no path tricks
PAGE_ROLES = {"/portal": (Role.ENTERPRISE,), "/window": (Role.CLERK,), "/inspect": (Role.INSPECTOR,), "/bank": (Role.BANK,),
              "/district": (Role.GOVERNOR, Role.REGISTRAR)}
TITLES = {"/portal": "企业材料银行", "/window": "窗口服务", "/inspect": "现场检查", "/bank": "银行核验", "/district": "辖区概况"}
OIDC_COOKIE = "qiyema_oidc"


def _cookie_secure(request: Request) -> bool:
    return request.app.state.runtime.settings.public_url.startswith("https://")


def _safe_next(target: str | None) -> str | None:
    # Only our own paths: an open redirect would make our login page a phishing tool.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def _login_form(request: Request, *, error: str = "", username: str = "", next_: str = "", status: int = 200):
    settings = request.app.state.runtime.settings
    return page("login.html", status, title="登录", csrf="", user="", script="", error=error, username=username,
                next=next_, oidc_name=settings.oidc_display_name if settings.oidc_issuer else "")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None):
    return _login_form(request, next_=_safe_next(next) or "")


@router.post("/login")
async def login(request: Request, accounts: AccountsDep, metrics: MetricsDep):
    if not _same_origin(request):
        raise ApiError(Kind.FORBIDDEN, "cross_origin", "sign-in must come from this site's own form")
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_ = _safe_next(str(form.get("next", ""))) or ""
    if not username or not password:
        return _login_form(request, error="请输入用户名和密码", username=username, next_=next_, status=422)
    try:
        # argon2id (64 MiB, about 0.1 s of CPU): in a worker thread, a few at a time, so
        # sign-ins never stall the event loop nor take every thread.
        signed = await anyio.to_thread.run_sync(accounts.sign_in, username, password,
                                                client_address(request.scope, trusted_proxies(request)),
                                                limiter=_hashing(request))
    except AccountError as exc:
        metrics.login_failures.labels(exc.code).inc()
        return _login_form(request, error=exc.message, username=username, next_=next_, status=http_status(exc.kind))
    return _signed_in_redirect(request, signed, next_)


def trusted_proxies(request: Request) -> frozenset[str]:
    return frozenset(request.app.state.runtime.settings.trusted_proxies)


def _hashing(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    if getattr(state, "password_hashing", None) is None:  # made on the loop, once
        state.password_hashing = anyio.CapacityLimiter(state.runtime.settings.password_hash_concurrency)
    return state.password_hashing


def _signed_in_redirect(request: Request, signed, next_: str | None) -> Response:
    target = next_ or HOME.get(Role(signed.user.role), "/scan")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, signed.secret, max_age=int(signed.expires_at - time.time()),
                        httponly=True, secure=_cookie_secure(request), samesite="lax", path="/")
    return response


@router.post("/logout")
async def logout(request: Request, accounts: AccountsDep):
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        found = await run_in_threadpool(accounts.session, secret)
        form = await request.form()
        if found is not None and not secrets.compare_digest(found[1], str(form.get("csrf", ""))):
            raise ApiError(Kind.FORBIDDEN, "csrf_failed", "the sign-out form lacks this session's CSRF token")
        await run_in_threadpool(accounts.sign_out, secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- OpenID Connect ------------------------------------------------------------------------------
def _oidc(request: Request) -> OidcClient:
    settings = request.app.state.runtime.settings
    if not (settings.oidc_issuer and settings.oidc_client_id):
        raise ApiError(Kind.NOT_FOUND, "oidc_not_configured", "OpenID Connect sign-in is not configured here")
    client = getattr(request.app.state, "oidc", None)
    if client is None:
        client = OidcClient(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                            settings.public_url.rstrip("/") + "/login/oidc/callback")
        request.app.state.oidc = client
    return client


@router.get("/login/oidc")
def oidc_start(request: Request, next: str | None = None):
    try:
        auth = _oidc(request).start()
    except OidcError as exc:
        return _login_form(request, error=f"统一身份认证暂不可用（{exc.code}）", status=503)
    response = RedirectResponse(auth.url, status_code=303)
    # The flow's secrets ride in a short-lived HttpOnly cookie: state (login CSRF), nonce, PKCE verifier.
    response.set_cookie(OIDC_COOKIE, "|".join((auth.state, auth.nonce, auth.verifier, _safe_next(next) or "")),
                        max_age=600, httponly=True, secure=_cookie_secure(request), samesite="lax", path="/login/oidc")
    return response


@router.get("/login/oidc/callback")
def oidc_callback(request: Request, accounts: AccountsDep, code: str | None = None, state: str | None = None,
                  error: str | None = None):
    parts = (request.cookies.get(OIDC_COOKIE) or "").split("|")
    if error:
        return _login_form(request, error=f"统一身份认证未完成（{error}）", status=401)
    if len(parts) != 4 or not state or not code or not secrets.compare_digest(parts[0], state):
        return _login_form(request, error="登录请求已失效，请重新登录", status=400)
    try:
        issuer, subject = _oidc(request).finish(code, parts[2], parts[1])
        signed = accounts.sign_in_oidc(issuer, subject)
    except OidcError as exc:
        return _login_form(request, error=f"统一身份认证失败（{exc.code}）", status=401)
    except AccountError as exc:
        return _login_form(request, error=exc.message, status=http_status(exc.kind))
    response = _signed_in_redirect(request, signed, parts[3] or None)
    response.delete_cookie(OIDC_COOKIE, path="/login/oidc")
    return response


# --- the pages -----------------------------------------------------------------------------------
def _page_for(path: str):
    def handler(request: Request, accounts: AccountsDep):
        secret = request.cookies.get(SESSION_COOKIE)
        found = accounts.session(secret) if secret else None
        if found is None:
            return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        principal, csrf, user = found
        if principal.role not in PAGE_ROLES[path]:
            return page("forbidden.html", 403, title="无权访问", csrf=csrf, user=user.display_name, script="",
                        role_name="、".join(_ROLE_NAME[r] for r in PAGE_ROLES[path]), home=HOME.get(principal.role))
        return page("app.html", title=TITLES[path], csrf=csrf, user=f"{user.display_name} · {principal.organisation}",
                    script=path.strip("/") + ".js", role=principal.role.value, scope=principal.scope or "")

    return handler


_ROLE_NAME = {Role.ENTERPRISE: "企业用户", Role.CLERK: "窗口工作人员", Role.INSPECTOR: "检查人员", Role.BANK: "银行工作人员",
              Role.GOVERNOR: "平台管理机关", Role.REGISTRAR: "登记机关"}
for _path in PAGE_ROLES:
    router.add_api_route(_path, _page_for(_path), methods=["GET"], response_class=HTMLResponse)


@router.get("/assets/{name}")
def asset(name: str):
    if name == "jsqr.js":
        path = NODE_MODULES / "jsqr" / "dist" / "jsQR.js"
        if not path.exists():
            raise ApiError(Kind.UNAVAILABLE, "asset_missing", "jsQR is not installed: run `npm install` in the project root")
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})
    if name not in ASSETS:
        raise ApiError(Kind.NOT_FOUND, "asset_not_found", f"no asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

