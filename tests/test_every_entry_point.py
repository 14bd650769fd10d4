"""Every command and every route has a test that runs it (issue 27, item 5).

Walks `qiyema`'s command tree (what `qiyema --help` lists, recursively) and the app's route
table, and looks through the tests' source for a call of each: a command's words as arguments
in order (`run(env, "records", "follow", ...)`), a route's path with the method beside it
(`api.post("/api/v1/materials/{id}/confirm")`, `("POST", "/api/v1/...")`). A new command or route
without a test fails here, by name."""

from __future__ import annotations

import re
from pathlib import Path

import click
from starlette.routing import Route

from materials_api.cli import main as cli
from materials_api.main import create_app

TESTS = Path(__file__).resolve().parent
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in sorted(TESTS.rglob("*.py"))
                   if p.name != Path(__file__).name)  # this file names no call


def commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, path + (name,))
        else:
            yield path + (name,)


def runs_command(words: tuple[str, ...]) -> bool:
    quoted = [rf"""["']{re.escape(w)}["']""" for w in words]
    return re.search(r",\s*".join(quoted), SOURCE) is not None


def test_every_command_has_a_test_that_runs_it():
    every = list(commands(cli))
    assert ("records", "follow") in every and ("serve",) in every  # the whole tree, not a part
    missing = [" ".join(words) for words in every if not runs_command(words)]
    assert not missing, f"commands no test runs: {missing}"


def calls_route(method: str, path: str) -> bool:
    # A parameter is whatever the test puts there (a literal, an f-string field); the path ends
    # where the string does, or at a query.
    pattern = re.sub(r"\\\{[^}]*\\\}", r"[^/\\s]*?", re.escape(path)) + r"""(?=["'?#])"""
    verb = re.compile(rf"""\.{method.lower()}\(|["']{method}["']|method\s*=\s*["']{method}["']""")
    for hit in re.finditer(pattern, SOURCE):
        line = SOURCE.rfind("\n", 0, SOURCE.rfind("\n", 0, hit.start()))  # this line and the one before
        if verb.search(SOURCE, line, hit.start()):
            return True
    return False


def walk(routes):
    """Every route, through the routers the app includes (included without a prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk(included.routes)
        elif isinstance(route, Route):
            yield route


def test_every_route_has_a_test_that_calls_it(runtime):
    routes = [(method, route.path) for route in walk(create_app(runtime, reconcile=False).routes)
              for method in sorted((route.methods or set()) - {"HEAD"})]
    assert ("POST", "/api/v1/records/batch") in routes and ("GET", "/V/{payload}") in routes
    missing = [f"{method} {path}" for method, path in routes if not calls_route(method, path)]
    assert not missing, f"routes no test calls: {missing}"
