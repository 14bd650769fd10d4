"""`qiyema records`: records from the authorities' own systems, in bulk or by following a change list;
and a record's proof bundle verified straight from the chain."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable

import click

from materials_api.cli.common import fail, load_trust, opened, print_verdict, resumable, settings, trust_option


@click.group()
def records() -> None:
    """Records from the authorities' systems: import a file, follow a change list."""


KEY_HELP = "a file holding the issuing organisation's API key (default: the QIYEMA_API_KEY variable)"


def _principal(runtime, key_file: Path | None):
    """The issuer the command acts as, authenticated by its API key like any API call."""
    from materials_api.identity.api_keys import authenticate
    from materials_api.records.kinds import category_of

    if key_file is not None:
        try:
            key = key_file.read_text().strip()
        except OSError as exc:
            fail(f"{key_file}: {exc.strerror}", 2)
    else:
        key = os.environ.get("QIYEMA_API_KEY", "").strip()
        if not key:
            fail("name the issuer's API key: --key-file FILE or the QIYEMA_API_KEY variable", 2)
    with runtime.sessions() as s:
        principal = authenticate(s, key)
    if principal is None:
        fail("the API key is unknown, malformed or revoked", 2)
    if category_of(principal) is None:
        fail(f"{principal.organisation} ({principal.role.value}) issues no records", 2)
    return principal


@records.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--key-file", type=click.Path(path_type=Path), help=KEY_HELP)
@click.option("--chunk", type=click.IntRange(1, 10_000), default=2_000, show_default=True,
              help="lines written ahead per transaction")
def records_import(file: Path, key_file: Path | None, chunk: int) -> None:
    """Import a file of records (JSON Lines, or CSV with the same field names as columns;
    UTF-8, or GB18030/GBK as Excel saves it in China): validated line by line, written ahead
    with a checkpoint, issued on chain in Merkle batches; run it again after an interruption to
    resume. Rejected lines go to FILE.rejected.csv.

    \b
    Fields (one JSON object a line, or CSV columns):
      uscc, kind, source_id, source_version   required: the company, the record kind (see
                                              GET /api/v1/record-kinds), your system's id and
                                              version of the record
      number, title, data (a JSON object), valid_from, valid_until (YYYY-MM-DD),
      status (valid/suspended/revoked/removed), reason   as the kind needs

    Exit status: 0 every line applied or unchanged; 1 some lines rejected; 2 the file or the
    key cannot be used; 3 the chain did not answer (what was read is written ahead)."""
    from tqdm import tqdm

    from chain.errors import ChainError
    from materials_api.records.importer import ImportFileError, count_lines, import_file

    if not file.is_file():
        fail(f"{file}: no such file", 2)
    with resumable(), opened() as (runtime, services):
        principal = _principal(runtime, key_file)
        # Two bars: the lines read and written ahead, then the records the chain still lacks
        # (a file written ahead at 100 % is not yet on chain: the second bar says how far that is).
        witnessing = _WitnessProcess(pending=lambda: services.records.backlog()[0])
        with tqdm(total=count_lines(file), unit="line", desc="written ahead", file=sys.stderr) as bar:
            try:
                report = import_file(file, services.record_feed, principal, witness=witnessing,
                                     chunk=chunk, progress=bar.update)
            except ImportFileError as exc:
                fail(str(exc), 2)
            except ChainError as exc:
                fail(f"chain: {exc}; what was read is written ahead and will be issued by the service's records "
                     "loop, or run the same command again", 3)
            finally:
                witnessing.abandon()  # a no-op once finished
    if report.already_finished:
        click.echo(f"this file was imported already (import {report.import_id}); nothing to do")
    click.echo(f"lines {report.lines}: applied {report.applied}, unchanged {report.unchanged}, "
               f"rejected {report.rejected}" + (" (resumed)" if report.resumed and not report.already_finished else ""))
    if report.rejections_file:
        click.echo(f"rejected lines and reasons: {report.rejections_file}")
    if report.rejected:
        sys.exit(1)


class _WitnessProcess:
    """The chain's witnessing of an import in a process of its own (`records.reconcile` until
    told to finish and nothing is pending): the importing process validates and writes ahead on
    one core while this one issues and confirms on the other. It stops by itself if the
    importing process dies; what either leaves is finished by the next run or the service."""

    def __init__(self, pending: Callable[[], int] | None = None):
        import multiprocessing

        self._pending = pending  # how many records the chain does not witness yet (the bar)
        context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited connections
        self._finish = context.Event()
        self._process = context.Process(target=_witness, args=(self._finish, os.getpid()), name="records-witness",
                                        daemon=True)
        self._process.start()

    def check(self) -> None:
        code = self._process.exitcode
        if code not in (None, 0):
            from chain.errors import ChainError

            how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
            raise ChainError(f"the chain's witnessing process stopped ({how})")

    def finish(self) -> None:
        self._finish.set()
        if self._pending is None:
            self._process.join()
        else:
            from tqdm import tqdm

            start = self._pending()
            with tqdm(total=start, unit="record", desc="witnessed on chain", file=sys.stderr) as bar:
                while self._process.is_alive():
                    self._process.join(0.5)
                    bar.n = max(0, start - self._pending())
                    bar.refresh()
                if self._process.exitcode == 0:
                    bar.n = start
                    bar.refresh()
        self.check()

    def abandon(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _witness(finish, parent: int) -> None:
    """`_WitnessProcess`'s body: its messages and exit codes are the command's (`opened`)."""
    with opened(start_node=False) as (_runtime, services):
        while True:
            if services.records.reconcile():
                continue
            if finish.is_set():
                if services.records.reconcile() == 0:  # anything written just before the word
                    return
                continue
            if os.getppid() != parent:  # the importing process died: the next run finishes this
                return
            finish.wait(0.05)


@records.command("follow")
@click.argument("url")
@click.option("--key-file", type=click.Path(path_type=Path), help=KEY_HELP)
@click.option("--source-token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="a file holding the token the authority gave for its change list (sent as a bearer token)")
@click.option("--client-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="mutual TLS: this service's certificate (PEM) for the authority's server")
@click.option("--client-key", type=click.Path(dir_okay=False, path_type=Path), help="mutual TLS: its private key (PEM)")
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path),
              help="the CA that signed the authority's server certificate (default: the system's)")
@click.option("--max-page-bytes", type=click.IntRange(1024), default=16 * 1024 * 1024, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.5), default=30.0, show_default=True, help="seconds a page may take")
@click.option("--interval", type=click.FloatRange(0.1), default=5.0, show_default=True, help="seconds between polls")
@click.option("--once", is_flag=True, help="read what the source has now, then stop")
def records_follow(url: str, key_file: Path | None, source_token_file: Path | None, client_cert: Path | None,
                   client_key: Path | None, ca_file: Path | None, max_page_bytes: int, timeout: float,
                   interval: float, once: bool) -> None:
    """Poll a source's change list (GET URL?after=CURSOR → JSON Lines {"cursor", "change"}) over
    https with the authority's credential, and apply it; the cursor is kept in the database, so a
    restart goes on where it stopped. Redirects to another host are not followed."""
    from chain.errors import ChainError
    from materials_api.records.follow import SourceAccess, SourceError, follow_once

    try:
        token = source_token_file.read_text().strip() if source_token_file else None
        access = SourceAccess(url, token=token or None, client_cert=client_cert, client_key=client_key,
                              ca_file=ca_file, max_bytes=max_page_bytes, timeout=timeout)
    except OSError as exc:
        fail(f"{source_token_file}: {exc.strerror}", 2)
    except SourceError as exc:
        fail(f"{exc} [{exc.code}]", 2)
    if access.plain_http:
        click.echo(f"WARNING: {url} is plain http (allowed on this machine only): nothing protects the change "
                   "list on the way", err=True)
    with opened() as (runtime, services):
        principal = _principal(runtime, key_file)
        while True:
            try:
                read, refused = follow_once(access, services.record_feed, principal)
                if read:
                    click.echo(f"{read} change(s) read, {refused} refused")
                while services.records.reconcile():
                    pass
            except SourceError as exc:
                if once:
                    fail(f"{exc} [{exc.code}]", 1)
                click.echo(f"warning: {exc} [{exc.code}]; trying again in {interval:g} s", err=True)
            except ChainError as exc:
                if once:
                    fail(f"chain: {exc}; the changes are written ahead", 3)
                click.echo(f"warning: chain: {exc}; the changes are written ahead", err=True)
            if once:
                return
            time.sleep(interval)


@records.command("verify")
@click.argument("proof_file", metavar="BUNDLE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--record", "record_file", type=click.Path(dir_okay=False, path_type=Path),
              help="the record's content (JSON: uscc, kind, number, data, valid_from, valid_until) to check "
                   "against its leaf")
@click.option("--rpc", default=None, help="a chain node's JSON-RPC URL (default: QIYEMA_CHAIN_RPC_URL or the "
                                          "local node)")
@click.option("--json", "as_json", is_flag=True, help="print the verdict as JSON")
@trust_option
def records_verify(proof_file: Path, record_file: Path | None, rpc: str | None, as_json: bool,
                   trust_list_file: Path | None, trusted_governor: str | None) -> None:
    """Check a record's proof bundle (version 2) straight from the chain, without the service:
    anchored, issued by a holder of its category's issuer role at that block, in force on chain.
    Exit 0 only when the verdict is VALID."""
    from chain.client import ChainClient
    from chain.material_verify import verify_record
    from chain.proof import ProofBundle, ProofError

    try:
        bundle = ProofBundle.from_json(json.loads(proof_file.read_text(encoding="utf-8")))
        content = json.loads(record_file.read_text(encoding="utf-8")) if record_file else None
    except OSError as exc:
        fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    except ValueError as exc:  # ProofError and JSON errors
        fail(f"{getattr(exc, 'message', exc)}", 2)
    if bundle.category is None:
        fail(f"{proof_file} is a material's bundle (version 1): use `qiyema material verify`", 2)
    trust = load_trust(trust_list_file, trusted_governor)
    s = settings()
    url = rpc or s.chain_rpc_url or f"http://127.0.0.1:{s.node_port}"
    client = ChainClient.from_url(url, retries=1, request_timeout=s.chain_request_timeout)
    try:
        verdict = verify_record(bundle, content=content if isinstance(content, dict) else None, client=client,
                                trust=trust, max_head_age=s.chain_max_head_age)
    except ProofError as exc:
        fail(exc.message, 2)
    print_verdict(verdict, as_json)

