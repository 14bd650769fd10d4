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
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="HTTP worker processes; background work runs once, in this process")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API (starts the managed anvil node when no QIYEMA_CHAIN_RPC_URL is set)."""
    import uvicorn

    from .main import Services, create_app

    runtime = _open_runtime()
    click.echo(f"Qiyema on http://{host}:{port} (API docs at /docs); chain id {runtime.chain.client.chain_id}")
    if workers == 1:
        try:
            uvicorn.run(create_app(runtime, close_runtime=True), host=host, port=port, log_level="info")
        finally:
            runtime.close()
        return
    background = Services.build(runtime).start_background(runtime)
    try:
        uvicorn.run("materials_api.main:worker_app", factory=True, workers=workers, host=host, port=port,
                    log_level="info")
    finally:
        background.stop()
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
def network() -> None:
    """A permissioned Clique network of geth nodes under $QIYEMA_HOME/network."""


def _network():
    from chain.network import GethNetwork

    return GethNetwork(_settings().home / "network")


def _network_call(fn):
    from chain.network import NetworkError

    try:
        return fn()
    except NetworkError as exc:
        _fail(f"network: {exc}", 3)


@network.command("up")
@click.option("--signers", default=3, show_default=True, type=click.IntRange(1, 21), help="signer nodes (new network)")
@click.option("--rpc-nodes", default=1, show_default=True, type=click.IntRange(1, 8),
              help="non-signing JSON-RPC nodes (new network)")
@click.option("--period", default=1, show_default=True, type=click.IntRange(1, 60), help="seconds per block (new network)")
@click.option("--chain-id", default=15150, show_default=True, type=int, help="chain id (new network)")
@click.option("--base-port", default=30400, show_default=True, type=click.IntRange(1024, 65000),
              help="p2p ports from here; authrpc +100, HTTP +200 (new network)")
def network_up(signers: int, rpc_nodes: int, period: int, chain_id: int, base_port: int) -> None:
    """Create the network on first use (genesis, keys, the service's accounts funded), then start
    every node and wait until blocks are sealed."""
    from .runtime import chain_accounts

    net = _network()
    if not net.exists:
        fund = [a.address for a in chain_accounts(_settings()).values()]
        _network_call(lambda: net.create(signers=signers, rpc_nodes=rpc_nodes, chain_id=chain_id, period=period,
                                         base_port=base_port, fund=fund))
        click.echo(f"created a {signers}-signer Clique network (chain id {chain_id}, {period} s blocks) at {net.root}")
    spec = _network_call(net.up)
    click.echo("network up; point the service at it with:")
    click.echo(f"  export QIYEMA_CHAIN_RPC_URL={net.rpc_url(spec)}")
    click.echo(f"  export QIYEMA_CONFIRMATIONS=2 QIYEMA_CHAIN_MAX_HEAD_AGE={max(30, 10 * spec.period)}")


@network.command("down")
def network_down() -> None:
    """Stop every node of the network (by PID; data is kept)."""
    stopped = _network_call(_network().down)
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@network.command("status")
def network_status() -> None:
    """Each node's process, peers and head; the signer set as the chain has it."""
    net = _network()
    rows = _network_call(net.status)
    click.echo(f"{'node':<10} {'role':<7} {'running':<8} {'peers':>5} {'head':>8}  address")
    for r in rows:
        click.echo(f"{r.name:<10} {r.role:<7} {'yes' if r.running else 'no':<8} "
                   f"{'-' if r.peers is None else r.peers:>5} {'-' if r.head is None else r.head:>8}  {r.address or ''}")
    if any(r.running for r in rows):
        signers = _network_call(net.signers)
        click.echo(f"signers ({len(signers)}): {', '.join(signers)}")


@network.command("add-signer")
def network_add_signer() -> None:
    """Start a new signer node and have the current signers vote it in (Clique)."""
    node = _network_call(_network().add_signer)
    click.echo(f"{node.name} ({node.address}) is a signer")


@network.command("remove-signer")
@click.argument("name")
def network_remove_signer(name: str) -> None:
    """Have the other signers vote NAME out (Clique), then stop it."""
    node = _network_call(lambda: _network().remove_signer(name))
    click.echo(f"{node.name} ({node.address}) voted out and stopped")


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
def users() -> None:
    """People who sign in to the pages (enterprise staff, clerks, inspectors, …)."""


@users.command("create")
@click.option("--org", "org", required=True, help="organisation name")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True, help="the person's name as shown on the pages")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role if r is not Role.PUBLIC]))
@click.option("--scope", default=None, help="enterprise: its USCC; issuer: record category")
@click.option("--oidc-subject", default=None, help="sign in through OpenID Connect as <issuer>|<sub> (no password)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (else prompted)")
def users_create(org: str, username: str, display_name: str, role: str, scope: str | None,
                 oidc_subject: str | None, password_stdin: bool) -> None:
    """Create a person's account; the password is hashed with argon2id and never shown again."""
    from .db import make_engine, migrate, session_factory
    from .services.accounts import AccountError, AccountService

    password = None
    if oidc_subject is None:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else \
            click.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    accounts = AccountService(session_factory(make_engine(settings.db_url)))
    try:
        user = accounts.create_user(org, username, display_name, Role(role), scope, password=password,
                                    oidc_subject=oidc_subject)
    except AccountError as exc:
        _fail(exc.message, 2)
    click.echo(f"user {user.username} ({role}{', ' + user.scope if user.scope else ''}) created in {org}")


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


def _print_verdict(verdict, as_json: bool) -> None:
    """Print a verdict's checks (or JSON) and exit: 0 only when it is VALID."""
    import json as json_mod

    if as_json:
        click.echo(json_mod.dumps(verdict.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(f"verdict: {verdict.status.value}")
        for c in verdict.checks:
            click.echo(f"  {c.name:<10} {c.status.value:<8} {c.reason}: {c.message}")
    sys.exit(0 if verdict.status.value == "VALID" else 1)


@main.group()
def code() -> None:
    """Enterprise codes (企业码): render, scan and verify, key set for offline use."""


def _code_service(runtime):
    from .services.codes import CodeService

    return CodeService(runtime.sessions, runtime.chain, runtime.settings)


def _write_code(service, uscc_text: str, out: Path) -> None:
    from codes import render

    url, enterprise = service.static_code(uscc_text)
    if out.suffix.lower() == ".svg":
        out.write_text(render.render_svg(url, enterprise.name, enterprise.uscc), encoding="utf-8")
    else:
        out.write_bytes(render.render_png(url, enterprise.name, enterprise.uscc))


@code.command("render")
@click.argument("uscc_text", metavar="USCC")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="FILE.png or FILE.svg")
def code_render(uscc_text: str, out: Path) -> None:
    """Render an enterprise's static code (PNG or SVG by the file's extension)."""
    from codes.uscc import UsccError

    from .services.enterprises import EnterpriseError

    if out.suffix.lower() not in (".png", ".svg"):
        _fail("the output must end in .png or .svg", 2)
    runtime = _open_runtime()
    try:
        _write_code(_code_service(runtime), uscc_text, out)
    except (UsccError, EnterpriseError) as exc:
        _fail(exc.message, 1)
    finally:
        runtime.close()
    click.echo(f"wrote {out}")


@code.command("render-batch")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["svg", "png"]), default="svg", show_default=True)
def code_render_batch(csv_file: Path, out_dir: Path, fmt: str) -> None:
    """Render the codes of every company in a CSV (a uscc column) into DIR/<USCC>.<format>."""
    import csv as csv_mod

    from tqdm import tqdm

    from codes.uscc import UsccError

    from .services.enterprises import EnterpriseError
    from .services.importer import USCC_HEADERS

    with open(csv_file, newline="", encoding="utf-8-sig") as f:
        reader = csv_mod.DictReader(f)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        col = next((cols[h] for h in USCC_HEADERS if h in cols), None)
        if col is None:
            _fail(f"the CSV needs a USCC column ({'/'.join(USCC_HEADERS)})", 2)
        codes_ = [row[col] for row in reader]
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = _open_runtime()
    failed = []
    try:
        service = _code_service(runtime)
        for value in tqdm(codes_, unit="code", desc="render", file=sys.stderr):
            try:
                _write_code(service, value, out_dir / f"{value.strip().upper()}.{fmt}")
            except (UsccError, EnterpriseError) as exc:
                failed.append((value, exc.message))
    finally:
        runtime.close()
    click.echo(f"rendered {len(codes_) - len(failed)} of {len(codes_)} into {out_dir}")
    for value, message in failed:
        click.echo(f"  not rendered {value!r}: {message}", err=True)
    if failed:
        sys.exit(1)


@code.command("scan")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", "keyset_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="verify offline against this cached key set (from `qiyema code keyset`)")
@click.option("--governor", help="the governor address trusted to sign the key set (offline)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
def code_scan(image: Path, keyset_file: Path | None, governor: str | None, as_json: bool) -> None:
    """Decode the code in a photo and verify it; exit 0 only when it is VALID."""
    import json as json_mod

    from codes.scan import ScanError, scan
    from codes.token import CodeFormatError
    from codes.verify import KeySet, OfflineSource, verify

    try:
        texts = scan(image)
    except ScanError as exc:
        _fail(exc.message, 1)
    text = texts[0]
    click.echo(f"decoded: {text}")
    if keyset_file:
        if not governor:
            _fail("--offline needs --governor ADDRESS (the key set's trusted signer)", 2)
        try:
            source = OfflineSource(KeySet.from_json(json_mod.loads(keyset_file.read_text())), governor)
        except (CodeFormatError, ValueError) as exc:
            _fail(getattr(exc, "message", str(exc)), 2)
        verdict = verify(text, source)
    else:
        runtime = _open_runtime()
        try:
            verdict = _code_service(runtime).verify(text)
        finally:
            runtime.close()
    _print_verdict(verdict, as_json)


@code.command("keyset")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def code_keyset(out: Path) -> None:
    """Export the signed registrar key set for offline verification."""
    import json as json_mod

    runtime = _open_runtime()
    try:
        service = _code_service(runtime)
        service.active_key()
        ks = service.keyset()
    finally:
        runtime.close()
    out.write_text(json_mod.dumps(ks.to_json(), indent=2))
    click.echo(f"wrote {out}; trusted governor: {ks.governor}")


@code.command("rotate-key")
def code_rotate_key() -> None:
    """Rotate the static-code key: every code signed by the old one stops verifying."""
    runtime = _open_runtime()
    try:
        key = _code_service(runtime).rotate_static_key()
    finally:
        runtime.close()
    click.echo(f"new static-code key {key.kid} at {key.address}; re-render every printed code")


@main.group()
def material() -> None:
    """Materials: independent verification against a proof bundle."""


@material.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--proof", "proof_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the material's proof bundle (JSON)")
@click.option("--rpc", default=None, help="a chain node's JSON-RPC URL (default: QIYEMA_CHAIN_RPC_URL or the "
                                          "local node)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
def material_verify(file: Path, proof_file: Path, rpc: str | None, as_json: bool) -> None:
    """Check FILE against its proof bundle straight from the chain, without the service or its
    database. Prints each check; exit 0 only when the verdict is VALID."""
    import json as json_mod

    from chain.client import ChainClient
    from chain.material_verify import sha256_of, verify_material
    from chain.proof import ProofBundle

    if not file.is_file():
        _fail(f"{file}: no such file", 2)
    if not proof_file.is_file():
        _fail(f"{proof_file}: no such file", 2)
    try:
        bundle = ProofBundle.from_json(json_mod.loads(proof_file.read_text(encoding="utf-8")))
    except ValueError as exc:  # ProofError and JSON errors
        _fail(f"{proof_file}: {getattr(exc, 'message', exc)}", 2)
    settings = _settings()
    url = rpc or settings.chain_rpc_url or f"http://127.0.0.1:{settings.node_port}"
    client = ChainClient.from_url(url, retries=1, request_timeout=5)
    verdict = verify_material(bundle, content_sha256=sha256_of(file), client=client)
    _print_verdict(verdict, as_json)


if __name__ == "__main__":
    main()
