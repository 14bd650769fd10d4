"""`qiyema code`: render, scan and verify enterprise codes (企业码); the key set for offline use."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from materials_api.cli.common import fail, opened, print_verdict
from materials_api.platform.spreadsheet import write_csv


@click.group()
def code() -> None:
    """Enterprise codes (企业码): render, scan and verify, key set for offline use."""


RENDER_CHUNK = 1_000  # codes looked up, signed and recorded together


def _write_code(service, uscc_text: str, out: Path) -> None:
    _write_rendered(service.static_code(uscc_text), out)


def _write_rendered(code: tuple, out: Path) -> None:
    from codes import render

    url, enterprise = code
    if out.suffix.lower() == ".txt":  # the code's text, for a print shop's own layout
        out.write_text(url + "\n", encoding="utf-8")
    elif out.suffix.lower() == ".svg":
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
    from materials_api.platform.errors import ServiceError

    if out.suffix.lower() not in (".png", ".svg"):
        fail("the output must end in .png or .svg", 2)
    with opened() as (_, services):
        try:
            _write_code(services.codes, uscc_text, out)
        except (UsccError, ServiceError) as exc:
            fail(exc.message, 1)
    click.echo(f"wrote {out}")


@code.command("render-batch")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "txt"]), default="svg", show_default=True,
              help="txt: the code's text alone")
def code_render_batch(csv_file: Path, out_dir: Path, fmt: str) -> None:
    """Render the codes of every company in a CSV (a uscc column) into DIR/<USCC>.<format>."""
    from tqdm import tqdm

    from codes.uscc import UsccError
    from materials_api.platform.errors import ServiceError
    from materials_api.registry.importer import USCC_HEADERS

    with open(csv_file, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        col = next((cols[h] for h in USCC_HEADERS if h in cols), None)
        if col is None:
            fail(f"the CSV needs a USCC column ({'/'.join(USCC_HEADERS)})", 2)
        values = [row[col] for row in reader]
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    with opened() as (_, services), tqdm(total=len(values), unit="code", desc="render", file=sys.stderr) as bar:
        for k in range(0, len(values), RENDER_CHUNK):
            chunk = values[k:k + RENDER_CHUNK]
            for value, code in zip(chunk, services.codes.static_codes(chunk)):
                if isinstance(code, (UsccError, ServiceError)):
                    failed.append((value, code.message))
                else:
                    _write_rendered(code, out_dir / f"{value.strip().upper()}.{fmt}")
            bar.update(len(chunk))
    click.echo(f"rendered {len(values) - len(failed)} of {len(values)} into {out_dir}")
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
    from codes.scan import ScanError, scan
    from codes.token import CodeFormatError
    from codes.keyset import KeySet, OfflineSource
    from codes.verify import verify

    try:
        texts = scan(image)
    except ScanError as exc:
        fail(exc.message, 1)
    text = texts[0]
    click.echo(f"decoded: {text}")
    if keyset_file:
        if not governor:
            fail("--offline needs --governor ADDRESS (the key set's trusted signer)", 2)
        try:
            source = OfflineSource(KeySet.from_json(json.loads(keyset_file.read_text())), governor)
        except (CodeFormatError, ValueError) as exc:
            fail(getattr(exc, "message", str(exc)), 2)
        verdict = verify(text, source)
    else:
        with opened() as (_, services):
            verdict = services.codes.verify(text)
    print_verdict(verdict, as_json)


@code.command("keyset")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def code_keyset(out: Path) -> None:
    """Export the signed registrar key set for offline verification."""
    with opened() as (_, services):
        services.codes.active_key()
        ks = services.codes.keyset()
    out.write_text(json.dumps(ks.to_json(), indent=2))
    click.echo(f"wrote {out}; trusted governor: {ks.governor}")


@code.command("rotate-key")
def code_rotate_key() -> None:
    """Rotate the static-code key (routine): new codes are signed by a new key; every code the
    old one signed stays valid (verdicts add the warning key_retired)."""
    with opened() as (_, services):
        key = services.codes.rotate_static_key()
    click.echo(f"new static-code key {key.kid} at {key.address}; codes printed before stay valid")


@code.command("compromise-key")
@click.option("--kid", required=True, type=click.IntRange(1, 1024), help="the static-code key id")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def code_compromise_key(kid: int, yes: bool) -> None:
    """Declare a static-code key compromised: every code it signed verifies INVALID
    (key_compromised) from now on. Then render their new codes with `qiyema code reissue`."""
    if not yes:
        click.confirm(f"every code signed by key {kid} will verify INVALID; go on?", abort=True, err=True)
    with opened() as (_, services):
        key = services.codes.compromise_static_key(kid)
        affected = services.codes.affected_by(kid)
        active = services.codes.active_key()
    click.echo(f"key {key.kid} ({key.address}) is compromised; {len(affected)} enterprise(s) need a new code, "
               f"signed by key {active.kid}: qiyema code reissue --kid {kid} -o DIR")


@code.command("reissue")
@click.option("--kid", required=True, type=click.IntRange(1, 1024), help="the compromised static-code key id")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "txt"]), default="svg", show_default=True)
def code_reissue(kid: int, out_dir: Path, fmt: str) -> None:
    """Render, in one batch, the new codes of every enterprise whose code key KID signed, into
    DIR/<USCC>.<format>, with DIR/reissued.csv listing them (for the print shop and the letters)."""
    from tqdm import tqdm

    with opened() as (_, services):
        codes = services.codes
        key = codes.key(kid)
        if key is None:
            fail(f"no static-code key with id {kid} [unknown_key]", 1)
        if key.status != "compromised":
            fail(f"key {kid} is {key.status}, not compromised: its codes stay valid "
                 f"(declare it with `qiyema code compromise-key --kid {kid}`)", 1)
        affected = codes.affected_by(kid)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for enterprise in tqdm(affected, unit="code", desc="reissue", file=sys.stderr):
            _write_code(codes, enterprise.uscc, out_dir / f"{enterprise.uscc}.{fmt}")
            rows.append((enterprise.uscc, enterprise.name, f"{enterprise.uscc}.{fmt}"))
        new_kid = codes.active_key().kid
    write_csv(out_dir / "reissued.csv", ["uscc", "name", "file", "old_kid", "new_kid"],
              [(*row, kid, new_kid) for row in rows])
    click.echo(f"reissued {len(rows)} code(s) signed by key {new_kid} into {out_dir} (list: reissued.csv)")
