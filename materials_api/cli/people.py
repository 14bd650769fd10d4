"""`qiyema keys` and `qiyema users`: API keys for organisations' systems, accounts for people."""

from __future__ import annotations

import sys

import click

from materials_api.cli.common import database, fail
from materials_api.identity.models import Role


@click.group()
def keys() -> None:
    """API keys for organisations (create), and the service's own signing keys (list, rotate,
    compromise, migrate: docs/operations.md, "Keys")."""


@keys.command("create")
@click.option("--org", "org", required=True, help="organisation name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--scope", default=None, help="issuer: record category; enterprise: its USCC")
def keys_create(org: str, role: str, scope: str | None) -> None:
    """Create an API key and print it (only its hash is stored)."""
    from codes.uscc import UsccError
    from materials_api.identity.api_keys import KeyError_, create_key

    with database() as sessions:
        try:
            with sessions.begin() as s:
                _, plain = create_key(s, org, Role(role), scope)
        except (KeyError_, UsccError) as exc:
            fail(str(exc), 2)
    click.echo(plain)


@click.group()
def users() -> None:
    """People who sign in to the pages (enterprise staff, clerks, inspectors, …)."""


@users.command("create")
@click.option("--org", "org", required=True, help="organisation name")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="the person's name as shown on the pages")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role if r not in (Role.PUBLIC, Role.SCRAPER)]))
@click.option("--scope", default=None, help="enterprise: its USCC; issuer: record category")
@click.option("--oidc-subject", default=None, help="sign in through OpenID Connect as <issuer>|<sub> (no password)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (else prompted)")
def users_create(org: str, username: str, display_name: str, role: str, scope: str | None,
                 oidc_subject: str | None, password_stdin: bool) -> None:
    """Create a person's account; the password is hashed with argon2id and never shown again."""
    from materials_api.identity.accounts import AccountError, AccountService

    password = None
    if oidc_subject is None:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else \
            click.prompt("password", hide_input=True, confirmation_prompt=True)
    with database() as sessions:
        try:
            user = AccountService(sessions).create_user(org, username, display_name, Role(role), scope,
                                                        password=password, oidc_subject=oidc_subject)
        except AccountError as exc:
            fail(exc.message, 2)
    click.echo(f"user {user.username} ({role}{', ' + user.scope if user.scope else ''}) created in {org}")
