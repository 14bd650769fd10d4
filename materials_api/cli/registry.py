"""`qiyema enterprises` (bulk onboarding) and `qiyema uscc` (checking a code by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from materials_api.cli.common import fail, opened


@click.group()
def enterprises() -> None:
    """Enterprises: bulk onboarding."""


@enterprises.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path))
@click.option("--batch-size", type=int, default=None, help="enterprises per registerBatch transaction")
def enterprises_import(csv_file: Path, batch_size: int | None) -> None:
    """Register every company of a CSV (columns uscc,name) in batches on chain; resumable."""
    from tqdm import tqdm

    from materials_api.registry.importer import ImportFileError, count_rows, import_csv

    if not csv_file.is_file():
        fail(f"{csv_file}: no such file", 2)
    with opened() as (_, services):
        service = services.enterprises
        service.batch_size = size = batch_size or service.batch_size
        with tqdm(total=count_rows(csv_file), unit="row", desc="import", file=sys.stderr) as bar:
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
