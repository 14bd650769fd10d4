"""`qiyema`: the operators' command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from .config import Settings
from .models import Role


def _settings() -> Settings:
    return Settings()


def _fail(message: str, code: int = 1):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="log what happens")
def main(verbose: bool) -> None:
    """Qiyema 企业码 · 材料银行 — operators' command line. Settings come from QIYEMA_* variables."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _open_runtime(start_node: bool = True):
    from chain.errors import ChainError
    from chain.node import NodeError

    from .runtime import Runtime

    try:
        return Runtime.open(_settings(), start_node=start_node)
    except (ChainError, NodeError) as exc:
        _fail(f"chain: {exc}", 3)


@main.command()
def init() -> None:
    """Create $QIYEMA_HOME, keys and the database, deploy the contracts, write a governor API key.

    Running it again changes nothing."""
    from .security import create_key

    settings = _settings()
    runtime = _open_runtime()
    try:
        key_file = settings.governor_key_file
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
        click.echo(f"home:      {settings.home}")
        click.echo(f"database:  {runtime.engine.url.render_as_string(hide_password=True)}")
        click.echo(f"chain:     id {d.chain_id}, Qiyema at {d.address} (block {d.block_number})")
    finally:
        runtime.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the API (starts the managed anvil node when no QIYEMA_CHAIN_RPC_URL is set)."""
    import uvicorn

    from .main import create_app

    runtime = _open_runtime()
    try:
        click.echo(f"Qiyema on http://{host}:{port} (API docs at /docs); chain id {runtime.chain.client.chain_id}")
        uvicorn.run(create_app(runtime, close_runtime=True), host=host, port=port, log_level="info")
    finally:
        runtime.close()


@main.group()
def chain() -> None:
    """The chain: deployment and code status."""


@chain.command("status")
def chain_status() -> None:
    """Whether the contract on chain matches the local build (exit 0 only if it does)."""
    from chain.deploy import code_status, load_record
    from chain.errors import ChainError

    from .runtime import connect_chain, managed_node

    settings = _settings()
    node = managed_node(settings)
    started = bool(node and node.start())
    try:
        client = connect_chain(settings)
        try:
            status = code_status(client, settings.deployments_dir)
            record = load_record(settings.deployments_dir, client.chain_id)
            click.echo(f"chain id:       {client.chain_id}")
            click.echo(f"head block:     {client.block_number()}")
        except ChainError as exc:
            _fail(f"chain unreachable: {exc}", 3)
        click.echo(f"contract:       {record.address if record else '-'}")
        click.echo(f"on-chain code:  {status.onchain_code_hash or '-'}")
        click.echo(f"local build:    {status.local_code_hash}")
        click.echo(f"status:         {status.reason}")
        if not status.matches_build:
            sys.exit(1)
    finally:
        if started:
            node.stop()


@main.group()
def keys() -> None:
    """API keys for organisations."""


@keys.command("create")
@click.option("--org", "org", required=True, help="organisation name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--scope", default=None, help="issuer: record category; enterprise: its USCC")
def keys_create(org: str, role: str, scope: str | None) -> None:
    """Create an API key and print it (only its hash is stored)."""
    from codes.uscc import UsccError

    from .db import make_engine, migrate, session_factory
    from .security import KeyError_, create_key

    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    sessions = session_factory(make_engine(settings.db_url))
    try:
        with sessions.begin() as s:
            _, plain = create_key(s, org, Role(role), scope)
    except (KeyError_, UsccError) as exc:
        _fail(str(exc), 2)
    click.echo(plain)


@main.group()
def enterprises() -> None:
    """Enterprises: bulk onboarding."""


@enterprises.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option("--batch-size", type=int, default=None, help="enterprises per registerBatch transaction")
def enterprises_import(csv_file: Path, batch_size: int | None) -> None:
    """Register every company of a CSV (columns uscc,name) in batches on chain; resumable."""
    from tqdm import tqdm

    from .services.enterprises import EnterpriseService
    from .services.importer import ImportFileError, count_rows, import_csv

    if not csv_file.is_file():
        _fail(f"{csv_file}: no such file", 2)
    runtime = _open_runtime()
    try:
        size = batch_size or runtime.settings.register_batch_size
        service = EnterpriseService(runtime.sessions, runtime.chain, size)
        with tqdm(total=count_rows(csv_file), unit="row", desc="import", file=sys.stderr) as bar:
            try:
                report = import_csv(csv_file, service, batch_size=size, progress=bar.update)
            except ImportFileError as exc:
                _fail(str(exc), 2)
        if report.already_finished:
            click.echo(f"this file was imported already (job {report.job_id}); nothing to do")
        click.echo(f"rows {report.total_rows}: registered {report.accepted}, rejected {report.rejected}"
                   + (" (resumed)" if report.resumed and not report.already_finished else ""))
        if report.rejections_file:
            click.echo(f"rejected rows and reasons: {report.rejections_file}")
    finally:
        runtime.close()


@main.group()
def uscc() -> None:
    """Unified Social Credit Codes (GB 32100-2015)."""


@uscc.command("check")
@click.argument("code")
def uscc_check(code: str) -> None:
    """Exit 0 if CODE is a valid USCC, 1 with the reason if not."""
    from codes.uscc import UsccError, validate

    try:
        click.echo(f"{validate(code)}: valid")
    except UsccError as exc:
        _fail(f"{code}: {exc.message}", 1)


if __name__ == "__main__":
    main()
