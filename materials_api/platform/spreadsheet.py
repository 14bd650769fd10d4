"""CSV files people open in a spreadsheet (Excel, WPS, LibreOffice): a cell that starts like a
formula (`=`, `+`, `-`, `@`, a tab or carriage return, or their full-width forms that WPS also
reads) is written with a leading apostrophe, so a title like `=HYPERLINK(...)` or `@SUM(...)`
that an outsider managed to put in a record stays text when an official opens the export
(OWASP "CSV injection"). Every CSV the product writes goes through here."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def safe_cell(value):
    """`value` as a spreadsheet will show it, never run it (numbers and None pass unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """The CSV text (with a byte-order mark, so Excel reads the Chinese as UTF-8)."""
    out = io.StringIO()
    _write(out, header, rows)
    return "\ufeff" + out.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        _write(f, header, rows)
    return path


def _write(f, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows([safe_cell(v) for v in row] for row in rows)
