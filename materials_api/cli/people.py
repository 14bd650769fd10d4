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


@users.command("list")
def users_list() -> None:
    """Every person's account: organisation, user name, name, role, scope, and whether it is
    disabled or locked out now."""
    from materials_api.identity.accounts import AccountService

    with database() as sessions:
        people = AccountService(sessions).people()
    if not people:
        click.echo("no accounts yet: qiyema users create")
        return
    for user, org, locked in people:
        state = "disabled" if user.disabled_at else "locked out" if locked else "active"
        click.echo(f"{org}\t{user.username}\t{user.display_name}\t{user.role}\t{user.scope or '-'}\t{state}")


def _new_password(password_stdin: bool) -> str:
    return sys.stdin.readline().rstrip("\n") if password_stdin else \
        click.prompt("new password", hide_input=True, confirmation_prompt=True)


@users.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the new password from standard input (else prompted)")
def users_reset_password(username: str, password_stdin: bool) -> None:
    """Give USERNAME a new password: every session of the account ends and its lock-outs are
    lifted. Exit 2 for an unknown user or a password the policy refuses."""
    from materials_api.identity.accounts import AccountError, AccountService

    password = _new_password(password_stdin)
    with database() as sessions:
        try:
            AccountService(sessions).reset_password(username, password)
        except AccountError as exc:
            fail(f"{exc.message} [{exc.code}]", 2)
    click.echo(f"{username}: new password set; signed out everywhere")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Lift USERNAME's sign-in lock-outs (from every address) now, rather than after the
    lock-out time. Exit 2 for an unknown user."""
    from materials_api.identity.accounts import AccountError, AccountService

    with database() as sessions:
        try:
            locked = AccountService(sessions).unlock(username)
        except AccountError as exc:
            fail(f"{exc.message} [{exc.code}]", 2)
    click.echo(f"{username}: unlocked ({locked} address(es) were locked out)")
