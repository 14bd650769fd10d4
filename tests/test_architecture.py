"""The dependency direction of the house (docs/architecture.md), checked by import-linter's
contracts in `.importlinter`: a lower layer importing a higher one fails `make test`."""

from __future__ import annotations

import configparser
from pathlib import Path

from importlinter import cli

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == cli.EXIT_STATUS_SUCCESS


def test_every_router_module_is_under_the_independence_contract():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    listed = set(config["importlinter:contract:routes-independent"]["modules"].split())
    present = {f"materials_api.api.routes.{p.stem}" for p in (ROOT / "materials_api/api/routes").glob("*.py")
               if p.stem != "__init__"}
    assert present == listed, f"add new router modules to .importlinter: {sorted(present - listed)}"


def test_services_carry_kinds_not_http_statuses():
    """A refusal says what kind it is; only the HTTP layer maps kinds to statuses, once."""
    import ast

    from materials_api.api.errors import HTTP_STATUS
    from materials_api.services import Kind

    assert set(HTTP_STATUS) == set(Kind)
    offenders = []
    for path in sorted((ROOT / "materials_api/services").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(getattr(node, "func", None), "attr", "")
            if isinstance(node, ast.Call) and name.endswith(("Error", "Denied", "Exception")) and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.keyword) and node.arg == "status" and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, int):
                offenders.append(f"{path.name}:{node.value.lineno}")
    assert not offenders, f"HTTP statuses inside services: {offenders}"
