"""The rejects file an import leaves beside its input: one CSV row per rejected line, so an
operator can fix and re-submit exactly those."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from materials_api.platform.spreadsheet import write_csv


def write_rejections(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path | None:
    """Write `rows` under `header` to `path`; None (and no file) when there are none."""
    rows = list(rows)
    if not rows:
        return None
    return write_csv(path, header, rows)
