"""Every error leaves the API as JSON `{"code": ..., "message": ...}` with a 4xx/5xx status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from chain.errors import ChainError, Kind, QiyemaError
from materials_api.platform.storage import StorageError
from materials_api.web.render import page

log = logging.getLogger("qiyema.api")


class ApiError(QiyemaError):
    """A refusal of the HTTP layer itself (a malformed upload, a missing key), with the response
    headers it needs (`WWW-Authenticate`)."""

    def __init__(self, kind: Kind, code: str, message: str, headers: dict | None = None):
        super().__init__(kind, code, message)
        self.headers = headers


# The one place a refusal's kind becomes an HTTP status.
HTTP_STATUS = {Kind.INVALID: 422, Kind.MALFORMED: 400, Kind.TOO_LARGE: 413, Kind.UNAUTHENTICATED: 401,
               Kind.FORBIDDEN: 403, Kind.NOT_FOUND: 404, Kind.CONFLICT: 409, Kind.UNSUPPORTED: 415,
               Kind.LOCKED: 423, Kind.UNAVAILABLE: 503}


def http_status(kind: Kind) -> int:
    return HTTP_STATUS[kind]


def _json(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers)


ERROR_SCHEMA = {
    "type": "object", "required": ["code", "message"], "additionalProperties": True,
    "properties": {"code": {"type": "string", "description": "a stable reason code"},
                   "message": {"type": "string", "description": "what went wrong, for a person"}},
}


def document(app: FastAPI) -> None:
    """Every operation may be refused (4xx) or find a part down (503) with the error body above:
    the schema says so once, as the `default` response of every operation."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.setdefault("responses", {}).setdefault("default", {
                        "description": "a refusal or failure: see `code`",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _wants_page(request: Request) -> bool:
    """A person's browser opening an address that does not exist gets a page saying so; a program
    (the API's paths, or asking for anything but HTML) gets the JSON error with its reason code."""
    return (request.method == "GET" and not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    @app.exception_handler(QiyemaError)
    async def _refusal(_: Request, exc: QiyemaError):
        return _json(http_status(exc.kind), exc.code, exc.message, getattr(exc, "headers", None), **exc.detail)

    @app.exception_handler(StorageError)
    async def _storage(_: Request, exc: StorageError):
        log.warning("storage error: %s", exc)
        return _json(503, "storage_unavailable", "the object store is unavailable; nothing was stored")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        return _json(422, "invalid_request", f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404 and _wants_page(request):
            return page("not_found.html", 404, title="页面不存在")
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, code, str(exc.detail))

    @app.exception_handler(ChainError)
    async def _chain(_: Request, exc: ChainError):
        log.warning("chain error: %s", exc)
        return _json(503, "chain_unavailable", f"the chain could not be reached or refused: {exc}")

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError):
        # The database refused a value the request carried (PostgreSQL: a NUL character in
        # text); the statement's transaction is rolled back, nothing was written.
        log.info("refused by the database: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        return _json(422, "invalid_text", "a value cannot be stored as given (text may not contain NUL characters)")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return _json(500, "internal_error", "internal error; it has been logged")
