"""Records in bulk from an authority's own system: `qiyema records import FILE` (a file, once,
resumable); `qiyema records follow URL` (a change list, polled) is records/follow.py. Both apply their changes
through the feed (`records.feed.RecordFeed`), so a line means the same as a change pushed to
`POST /api/v1/records/batch`.

Import: the file (JSON Lines, or CSV with the feed's field names as columns, `data` as JSON text)
is read in chunks; each chunk's changes are written ahead together with the import's checkpoint
(the next line) and its rejections in one transaction, then the chain witnesses them in Merkle
batches. Killed at any point, the same command resumes from the checkpoint: a chunk is in the
database whole or not at all, and the feed's idempotency (issuer, source_id, source_version) and
the reconciliation's look at the chain mean nothing is written or issued twice.

Follow: `GET URL?after=CURSOR` answers JSON Lines `{"cursor": "…", "change": {…}}`, oldest first;
each page's changes are applied with the last cursor of the page in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from materials_api.identity.api_keys import Principal
from materials_api.platform.failpoints import failpoint
from materials_api.platform.reports import write_rejections
from materials_api.platform.textfiles import UTF8, TextEncodingError, text_encoding
from materials_api.records.feed import FIELDS, ChangeRefused, ChangeResult, RecordFeed
from materials_api.records.models import RecordImport, RecordImportRejection

CHUNK = 2_000  # lines written ahead per transaction


class ImportFileError(ValueError):
    """The file itself cannot be imported (not UTF-8, not JSON Lines or CSV, no usable columns)."""


@dataclass
class ImportReport:
    import_id: int
    lines: int
    applied: int
    unchanged: int
    rejected: int
    resumed: bool
    already_finished: bool
    rejections_file: Path | None


def _lines(path: Path, start: int, encoding: str = UTF8) -> Iterator[tuple[int, object]]:
    """(line number, the change as a dict) from line `start` on; CSV lines are numbered as in
    the file (the header is line 1)."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding=encoding) as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = {"uscc", "kind", "source_id", "source_version"} - set(columns)
            if missing:
                raise ImportFileError(f"the CSV lacks column(s) {', '.join(sorted(missing))}; "
                                      f"its columns are {', '.join(FIELDS)}")
            for row in reader:
                if reader.line_num >= start:
                    yield reader.line_num, {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        return
    with open(path, encoding=encoding) as f:
        for number, line in enumerate(f, start=1):
            if number < start or not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError:
                yield number, ChangeRefused("line_not_json", "该行不是 JSON 对象 / the line is not a JSON object")


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip()) - (1 if path.suffix.lower() == ".csv" else 0)


def _check_readable(path: Path) -> str:
    """The file's text encoding, once it is known to be importable."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        encoding = text_encoding(path)
    except TextEncodingError as exc:
        raise ImportFileError(str(exc)) from None
    with open(path, encoding=encoding) as f:
        head = f.read(65536)
    if path.suffix.lower() == ".csv":
        next(_lines(path, 10**12, encoding), None)  # checks the header
    elif head.strip() and not head.lstrip().startswith("{"):
        raise ImportFileError(f"{path}: neither JSON Lines (one object a line) nor a .csv file")
    return encoding


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Witnessing(Protocol):
    """The chain witnessing what an import writes ahead, running beside it."""

    def check(self) -> None:
        """Raise the witnessing's failure, if it failed."""

    def finish(self) -> None:
        """Wait until everything written is witnessed (then raise a failure, if any)."""

    def abandon(self) -> None:
        """Stop now: what is written ahead stays for the next run or the service's loop."""


def import_file(path: Path, feed: RecordFeed, principal: Principal, *,
                witness: Callable[[], int] | Witnessing | None = None,
                chunk: int = CHUNK, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import a file's changes as `principal` (an issuer's key). `witness`: what makes the chain
    witness what is written — a pass (`reconcile`: returns 0 once nothing is pending), run in a
    thread beside the writing; or a `Witnessing` already running elsewhere (the command line's
    process of its own, so writing and witnessing use two cores)."""
    path = Path(path)
    encoding = _check_readable(path)
    sessions: sessionmaker = feed.sessions
    digest = _digest(path)
    with sessions.begin() as s:
        job = s.scalar(select(RecordImport).where(RecordImport.organisation_id == principal.organisation_id,
                                                  RecordImport.source_sha256 == digest))
        resumed = job is not None
        if job is None:
            job = RecordImport(organisation_id=principal.organisation_id, source_sha256=digest, source_name=path.name,
                               next_line=1, applied=0, unchanged=0, rejected=0)
            s.add(job)
            s.flush()
        job_id, next_line, finished = job.id, job.next_line, job.finished_at is not None
    rejections_file = path.with_name(path.name + ".rejected.csv")
    if finished:
        return _report(sessions, job_id, path, resumed=True, finished=True, rejections_file=rejections_file)
    if progress and next_line > 1:
        progress(next_line - 1)

    def flush(batch: list[tuple[int, object]]) -> None:
        numbers = [n for n, _ in batch]

        def checkpoint(s: Session, results: list[ChangeResult]) -> None:
            counts = {"applied": 0, "unchanged": 0, "rejected": 0}
            rejected = []
            for r in results:
                if r.outcome == "refused":
                    counts["rejected"] += 1
                    raw = batch[r.index][1]
                    source = str(raw.get("source_id", "")) if isinstance(raw, dict) else ""
                    rejected.append(dict(import_id=job_id, line=numbers[r.index], source_id=source[:100],
                                         reason_code=r.reason, message=r.message))
                else:
                    counts["unchanged" if r.outcome == "unchanged" else "applied"] += 1
            if rejected:
                s.execute(insert(RecordImportRejection), rejected)
            s.execute(update(RecordImport).where(RecordImport.id == job_id).values(
                next_line=numbers[-1] + 1, applied=RecordImport.applied + counts["applied"],
                unchanged=RecordImport.unchanged + counts["unchanged"],
                rejected=RecordImport.rejected + counts["rejected"]))
            failpoint("records.import.before_commit")

        feed.apply(principal, [raw for _, raw in batch], then=checkpoint)
        failpoint("records.import.after_chunk")
        if progress:
            progress(len(batch))

    # The chain witnesses what is written ahead while the next chunks are read and written: the
    # waiting for receipts overlaps the validating and writing.
    chain = None if witness is None else witness if hasattr(witness, "finish") else _Witnessing(witness)
    try:
        batch: list[tuple[int, object]] = []
        for number, raw in _lines(path, next_line, encoding):
            batch.append((number, raw))
            if len(batch) >= chunk:
                flush(batch)
                batch = []
                chain and chain.check()
        if batch:
            flush(batch)
    except BaseException:
        if chain:
            chain.abandon()  # what is written ahead stays for the next run or the service's loop
        raise
    if chain:
        chain.finish()
    with sessions.begin() as s:
        s.execute(update(RecordImport).where(RecordImport.id == job_id).values(finished_at=datetime.now(timezone.utc)))
    return _report(sessions, job_id, path, resumed=resumed, finished=False, rejections_file=rejections_file)


class _Witnessing:
    """`witness()` in a thread until told to finish and nothing is left; its failure is raised
    in the importing thread (at the next chunk, or at the end)."""

    def __init__(self, witness: Callable[[], int]):
        self._witness = witness
        self._done = threading.Event()
        self._failure: list[BaseException] = []
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="records-witness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._abandoned:
                finishing = self._done.is_set()
                if self._witness() == 0:
                    if finishing:
                        return
                    self._done.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - handed to the importing thread
            self._failure.append(exc)

    def check(self) -> None:
        if self._failure:
            raise self._failure[0]

    def abandon(self) -> None:
        self._abandoned = True
        self._done.set()
        self._thread.join()

    def finish(self) -> None:
        self._done.set()
        self._thread.join()
        self.check()


def _report(sessions: sessionmaker, job_id: int, path: Path, *, resumed: bool, finished: bool,
            rejections_file: Path) -> ImportReport:
    with sessions() as s:
        job = s.get(RecordImport, job_id)
        rejections = list(s.scalars(select(RecordImportRejection).where(RecordImportRejection.import_id == job_id)
                                    .order_by(RecordImportRejection.line)))
    written = write_rejections(rejections_file, ["line", "source_id", "reason_code", "message"],
                               ([r.line, r.source_id, r.reason_code, r.message] for r in rejections))
    return ImportReport(job_id, count_lines(path), job.applied, job.unchanged, job.rejected, resumed, finished, written)
