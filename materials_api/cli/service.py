"""Setting the service up and running it: `init`, `serve`, `chain status`."""

from __future__ import annotations

import logging
import os
import sys

import click

from materials_api.cli.common import fail, opened, settings
from materials_api.identity.models import Role


@click.command()
@click.option("--profile", type=click.Choice(["intl", "gm"]), default=None,
              help="the deployment's cryptography, fixed from now on: intl (secp256k1, keccak256/SHA-256, "
                   "AES-256-GCM at rest; the default) or gm (国密: SM2, SM3, SM4-GCM at rest)")
def init(profile: str | None) -> None:
    """Create $QIYEMA_HOME, keys and the database, deploy the contracts, write a governor API key.

    Running it again changes nothing."""
    from materials_api.identity.api_keys import create_key

    if profile:
        os.environ["QIYEMA_CRYPTO_PROFILE"] = profile
    with opened() as (runtime, _):
        key_file = runtime.settings.governor_key_file
        if key_file.exists():
            click.echo(f"governor API key already in {key_file}")
        else:
            with runtime.sessions.begin() as s:
                _, plain = create_key(s, "governor", Role.GOVERNOR)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(plain + "\n")
            click.echo(f"governor API key written to {key_file}")
        d = runtime.chain.deployment
        click.echo(f"home:      {runtime.settings.home}")
        click.echo(f"database:  {runtime.engine.url.render_as_string(hide_password=True)}")
        click.echo(f"chain:     id {d.chain_id}, Qiyema at {d.address} (block {d.block_number})")
        click.echo(f"profile:   {_profile_line(runtime.settings)}")


def _profile_line(s) -> str:
    from chain.crypto_profile import profile

    p = profile(s.crypto_profile)
    at_rest = p.aead.name if s.encrypt_at_rest else "off"
    return f"{p.name} (at rest {at_rest}; codes {p.signature}; proofs {p.tree_hash})"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="HTTP worker processes; background work runs once, in this process")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API (starts the managed anvil node when no QIYEMA_CHAIN_RPC_URL is set)."""
    import uvicorn

    from materials_api.main import create_app
    from materials_api.platform.metrics import Metrics, share_between_processes
    from materials_api.workers import run_workers

    logging.getLogger().setLevel(logging.INFO)  # a server's log is its output: JSON lines on stderr
    s = settings()
    if not s.chain_rpc_url and s.public_url.startswith("https://"):
        # The managed node is anvil: funded accounts unlocked on it, anyone it answers may
        # impersonate any account. It listens on 127.0.0.1 only and is for development.
        fail("the managed development node (anvil: unlocked funded accounts, account impersonation) does not "
             f"serve a public site ({s.public_url}): set QIYEMA_CHAIN_RPC_URL to the permissioned network's "
             "node (docs/operations.md, section 1)", 2)
    with opened() as (runtime, services):
        click.echo(f"Qiyema on http://{host}:{port} (API docs at /docs); chain id {runtime.chain.client.chain_id}")
        if workers == 1:
            # The app's shutdown closes the runtime (and stops the node it started): uvicorn
            # re-raises SIGTERM once it has shut down, so code after `run` may never execute.
            uvicorn.run(create_app(runtime, services=services, close_runtime=True), host=host, port=port,
                        log_config=None, access_log=False)
            return
        # Counts of every process (workers, and this one's anchoring) add up in any worker's scrape.
        share_between_processes(runtime.settings.home / "metrics")
        services.observe(Metrics(), runtime)
        background = services.start_background(runtime)
        try:
            status = run_workers(host, port, workers)
        finally:
            background.stop()
    if status:
        sys.exit(status)


@click.group()
def chain() -> None:
    """The chain: deployment and code status."""


@chain.command("status")
def chain_status() -> None:
    """Whether the contract on chain matches the local build (exit 0 only if it does)."""
    from chain.deploy import code_status, load_record
    from chain.errors import ChainError
    from materials_api.platform.runtime import connect_chain, managed_node

    s = settings()
    node = managed_node(s)
    started = bool(node and node.start())
    try:
        client = connect_chain(s)
        try:
            status = code_status(client, s.deployments_dir)
            record = load_record(s.deployments_dir, client.chain_id)
            click.echo(f"chain id:       {client.chain_id}")
            click.echo(f"head block:     {client.block_number()}")
        except ChainError as exc:
            fail(f"chain unreachable: {exc}", 3)
        click.echo(f"contract:       {record.address if record else '-'}")
        click.echo(f"on-chain code:  {status.onchain_code_hash or '-'}")
        click.echo(f"local build:    {status.local_code_hash}")
        click.echo(f"status:         {status.reason}")
        profile_file = s.home / "crypto-profile"
        if profile_file.exists():
            s.crypto_profile = profile_file.read_text().strip()
        click.echo(f"crypto profile: {_profile_line(s)}")
        from materials_api.platform.runtime import read_trust_list

        trust_list = read_trust_list(s)
        click.echo(f"trust list:     {len(trust_list.deployments)} deployment(s), signed by {trust_list.governor}"
                   if trust_list else "trust list:     none yet (`qiyema init` writes it)")
        if not status.matches_build:
            sys.exit(1)
    finally:
        if started:
            node.stop()


@chain.command("upgrade")
@click.option("--yes", is_flag=True, help="deploy without asking")
def chain_upgrade(yes: bool) -> None:
    """Deploy this build's contract beside the one on chain and append it to the trust list
    (the old deployment stays on it: evidence anchored there keeps verifying)."""
    from materials_api.platform.runtime import read_trust_list

    if not yes:
        click.confirm("Deploy this build's contract as a new deployment?", abort=True)
    before = read_trust_list(settings())
    with opened(upgrade=True) as (runtime, _):
        d = runtime.chain.deployment
        if before is not None and any(t.address.lower() == d.address.lower() for t in before.deployments):
            click.echo(f"the contract at {d.address} (chain id {d.chain_id}) already runs this build: nothing deployed")
            return
        click.echo(f"deployed: chain id {d.chain_id}, Qiyema at {d.address} (block {d.block_number})")
        click.echo(f"trust list: {len(runtime.chain.trust_list.deployments)} deployment(s) in "
                   f"{runtime.settings.trust_list_path}")


@chain.command("trust-list")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="write the signed trust list here (default: print it)")
def chain_trust_list(out: str | None) -> None:
    """The governor-signed trust list: the deployments verifiers accept. Offline verifiers pin
    it by the governor's address (printed)."""
    import json

    from materials_api.platform.runtime import read_trust_list

    trust_list = read_trust_list(settings())
    if trust_list is None:
        fail(f"no trust list in {settings().trust_list_path}: run `qiyema init` first", 2)
    text = json.dumps(trust_list.to_json(), indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        click.echo(f"wrote {out}: {len(trust_list.deployments)} deployment(s)")
    else:
        click.echo(text)
    click.echo(f"trusted governor: {trust_list.governor}", err=bool(not out))


@click.command()
def demo() -> None:
    """Fill this home with a small demo district (companies, records, anchored materials, a person
    of every role) and print where to look and how to sign in. Running it again changes nothing."""
    from materials_api.demo import DemoRefused, fill

    with opened() as (runtime, services):
        try:
            district = fill(runtime, services)
        except DemoRefused as exc:
            fail(f"{exc.message} [{exc.code}]", 1)
        base = runtime.settings.public_url.rstrip("/")
        codes = [(uscc, name, services.codes.static_code(uscc)[0]) for uscc, name in district.companies]
    if district.already:
        click.echo("this home has the demo district already (its people keep the passwords printed the first time)")
    else:
        click.echo(f"demo district: {len(codes)} companies, {district.anchored} materials anchored")
    click.echo(f"start `qiyema serve` and open {base}/ ; the companies' codes:")
    for uscc, name, url in codes:
        click.echo(f"  {name} {uscc}: {url}")
    for username, password, role in district.people:
        click.echo(f"  sign in at {base}/login as {username} / {password} ({role})")
