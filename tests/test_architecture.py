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


def _contract(name: str) -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config[f"importlinter:contract:{name}"]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _product_modules():
    for path in sorted((ROOT / "materials_api").rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def test_every_router_module_is_under_the_independence_contract():
    """A module defining an `APIRouter` is a router; each is listed, so none imports another."""
    listed = set(_contract("routes-independent")["modules"].split())
    present = {_module(p) for p in _product_modules() if "router = APIRouter(" in p.read_text()}
    assert present == listed, f"add new router modules to .importlinter: {sorted(present ^ listed)}"


DOMAINS = ("identity", "registry", "records", "bank", "codes")


def _service_modules():
    """Every module of a domain except its routes: models, services, schemas."""
    for domain in DOMAINS:
        for path in sorted((ROOT / "materials_api" / domain).glob("*.py")):
            if path.stem not in ("__init__", "routes"):
                yield path


def test_every_domain_service_module_is_kept_free_of_http():
    listed = set(_contract("services-know-no-http")["source_modules"].split())
    present = {_module(p) for p in _service_modules()}
    assert present == listed, f"list domain modules in .importlinter: {sorted(present ^ listed)}"


def test_no_module_reaches_for_another_modules_private_names():
    """`_name` is a module's own; sharing it means it belongs in a public place (api.deps, a
    domain's service) under a public name."""
    import ast

    offenders = []
    for path in _product_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("materials_api"):
                offenders += [f"{_module(path)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not offenders, offenders


def test_services_carry_kinds_not_http_statuses():
    """A refusal says what kind it is; only the HTTP layer maps kinds to statuses, once."""
    import ast

    from materials_api.api.errors import HTTP_STATUS
    from materials_api.platform.errors import Kind

    assert set(HTTP_STATUS) == set(Kind)
    offenders = []
    for path in _service_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = getattr(getattr(node, "func", None), "id", None) or getattr(getattr(node, "func", None), "attr", "")
            if isinstance(node, ast.Call) and name.endswith(("Error", "Denied", "Exception")) and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
                offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.keyword) and node.arg == "status" and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, int):
                offenders.append(f"{path.name}:{node.value.lineno}")
    assert not offenders, f"HTTP statuses inside services: {offenders}"


def test_every_coded_error_builds_on_the_one_base():
    """Only `QiyemaError` sets `code` and `message`; every other coded error inherits them, so
    the HTTP layer and the CLI handle one shape."""
    import ast

    from chain.errors import QiyemaError
    from chain.proof import ProofError
    from codes.scan import ScanError
    from codes.token import CodeFormatError
    from codes.uscc import UsccError
    from materials_api.api.errors import ApiError
    from materials_api.identity.oidc import OidcError
    from materials_api.platform.errors import ServiceError

    for error in (ProofError, ScanError, CodeFormatError, UsccError, ApiError, OidcError, ServiceError):
        assert issubclass(error, QiyemaError), error
    offenders = []
    for package in ("chain", "codes", "materials_api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for cls in (n for n in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(n, ast.ClassDef)):
                for node in ast.walk(cls):
                    if isinstance(node, ast.Attribute) and node.attr == "code" and isinstance(node.ctx, ast.Store) \
                            and getattr(node.value, "id", "") == "self" and cls.name != "QiyemaError":
                        offenders.append(f"{path.relative_to(ROOT)}:{cls.name}")
    assert not offenders, f"coded errors beside the base: {offenders}"
