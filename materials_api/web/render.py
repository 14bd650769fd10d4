"""Pages are Jinja2 templates (`templates/`), autoescaped: whatever the data holds, a page shows
it as text, never as markup."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from materials_api.identity.models import Role
from materials_api.web import labels

_ENV = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.globals["labels"] = labels


# Each role's own page: where its people land after signing in, and what 返回 leads to.
HOME = {Role.ENTERPRISE: "/portal", Role.CLERK: "/window", Role.INSPECTOR: "/inspect", Role.BANK: "/bank",
        Role.GOVERNOR: "/district", Role.REGISTRAR: "/district"}


def render(template: str, **context) -> str:
    return _ENV.get_template(template).render(**context)


def page(template: str, status_code: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status_code)
