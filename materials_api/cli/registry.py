"""`qiyema enterprises` (bulk onboarding) and `qiyema uscc` (checking a code by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from materials_api.cli.common import fail, opened, resumable


@click.group()
def enterprises() -> None:
    """Enterprises: bulk onboarding."""


@enterprises.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option("--batch-size", type=int, default=None, help="enterprises per registerBatch transaction")
def enterprises_import(csv_file: Path, batch_size: int | None) -> None:
    """Register every company of a CSV (columns uscc,name; UTF-8, or GB18030/GBK as Excel saves
    it in China) in batches on chain; resumable: run it again after an interruption.

    Exit status: 0 every row registered; 1 some rows rejected (they and their reasons are in
    CSV.rejected.csv); 2 the file cannot be imported (not found, not CSV, no uscc/name columns,
    neither UTF-8 nor GB18030)."""
    from tqdm import tqdm

    from materials_api.platform.textfiles import GB18030, TextEncodingError, text_encoding
    from materials_api.registry.importer import ImportFileError, count_rows, import_csv

    if not csv_file.is_file():
        fail(f"{csv_file}: no such file", 2)
    try:
        encoding = text_encoding(csv_file)
    except TextEncodingError as exc:
        fail(str(exc), 2)
    if encoding == GB18030:
        click.echo(f"{csv_file}: read as GB18030 (GBK), the encoding Excel uses in China", err=True)
    with resumable(), opened() as (_, services):
        service = services.enterprises
        service.batch_size = size = batch_size or service.batch_size
        with tqdm(total=count_rows(csv_file, encoding), unit="row", desc="import", file=sys.stderr) as bar:
            try:
                report = import_csv(csv_file, service, batch_size=size, progress=bar.update)
            except ImportFileError as exc:
                fail(str(exc), 2)
    if report.already_finished:
        click.echo(f"this file was imported already (job {report.job_id}); nothing to do")
    click.echo(f"rows {report.total_rows}: registered {report.accepted}, rejected {report.rejected}"
               + (" (resumed)" if report.resumed and not report.already_finished else ""))
    if report.rejections_file:
        click.echo(f"rejected rows and reasons: {report.rejections_file}")
    if report.rejected:
        sys.exit(1)


@click.group()
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
        fail(f"{code}: {exc.message}", 1)
