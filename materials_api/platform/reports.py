"""The rejects file an import leaves beside its input: one CSV row per rejected line, so an
operator can fix and re-submit exactly those."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence


def write_rejections(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path | None:
    """Write `rows` under `header` to `path`; None (and no file) when there are none."""
    rows = list(rows)
    if not rows:
        return None
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path
