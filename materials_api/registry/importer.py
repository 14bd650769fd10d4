"""Onboarding a district's existing register: `qiyema enterprises import CSV`.

Rows are validated, written ahead to the database in chunks together with the job's checkpoint
(one transaction), then registered on chain with one `registerBatch` transaction per chunk,
several in flight at once. An interrupted import resumes from its checkpoint: rows already
written ahead are reconciled against the chain first, so none is registered twice.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import insert, select, update

from chain.client import Receipt
from chain.material_verify import sha256_of
from codes.uscc import UsccError, chain_key, validate
from materials_api.platform.models import ChainState
from materials_api.platform.outbox import Delivery, Outbox
from materials_api.platform.reports import write_rejections
from materials_api.platform.textfiles import UTF8, TextEncodingError, text_encoding
from materials_api.registry.models import Enterprise, EnterpriseStatus, ImportJob, ImportRejection
from materials_api.registry.service import ENTERPRISES, EnterpriseService

USCC_HEADERS = ("uscc", "统一社会信用代码", "credit_code")
NAME_HEADERS = ("name", "企业名称", "名称", "company_name")


class ImportFileError(ValueError):
    """The file itself cannot be imported (not CSV, missing columns)."""


@dataclass
class ImportReport:
    job_id: int
    total_rows: int
    accepted: int
    rejected: int
    resumed: bool
    already_finished: bool
    rejections_file: Path | None


def _columns(fieldnames: list[str] | None) -> tuple[str, str]:
    if not fieldnames:
        raise ImportFileError("the CSV has no header row; it needs columns uscc,name")
    names = {f.strip().lstrip("\ufeff").lower(): f for f in fieldnames}
    uscc = next((names[h] for h in USCC_HEADERS if h in names), None)
    name = next((names[h] for h in NAME_HEADERS if h in names), None)
    if not uscc or not name:
        raise ImportFileError(f"the CSV needs a USCC column ({'/'.join(USCC_HEADERS)}) and a name column "
                              f"({'/'.join(NAME_HEADERS)}); it has {', '.join(fieldnames)}")
    return uscc, name


def _rows(path: Path, start: int, encoding: str = UTF8) -> Iterator[tuple[int, str, str]]:
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.DictReader(f)
        uscc_col, name_col = _columns(reader.fieldnames)
        for number, row in enumerate(reader, start=1):
            if number >= start:
                yield number, (row.get(uscc_col) or "").strip(), (row.get(name_col) or "").strip()


def count_rows(path: Path, encoding: str = UTF8) -> int:
    with open(path, newline="", encoding=encoding) as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def import_csv(path: Path, service: EnterpriseService, *, batch_size: int = 500, in_flight: int = 4,
               progress: Callable[[int], None] | None = None) -> ImportReport:
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path} is not a file")
    try:
        encoding = text_encoding(path)
        with open(path, newline="", encoding=encoding) as f:
            _columns(csv.DictReader(f).fieldnames)
        total = count_rows(path, encoding)
    except TextEncodingError as exc:
        raise ImportFileError(str(exc)) from None
    except csv.Error as exc:
        raise ImportFileError(f"the file is not valid CSV: {exc}") from None
    sessions, chain = service.sessions, service.chain
    digest = sha256_of(path).hex()
    with sessions.begin() as s:
        job = s.scalar(select(ImportJob).where(ImportJob.source_sha256 == digest))
        resumed = job is not None
        if job is None:
            job = ImportJob(source_sha256=digest, source_name=path.name)
            s.add(job)
            s.flush()
        job_id, next_row, finished = job.id, job.next_row, job.finished_at is not None
    rejections_file = path.with_name(path.name + ".rejected.csv")
    if finished:
        return _report(service, job_id, total, resumed=True, finished=True, rejections_file=rejections_file)

    # Rows written ahead by an interrupted run: let the chain's own view decide what is missing.
    with sessions() as s:
        leftover = list(s.scalars(select(Enterprise.id).where(
            Enterprise.import_job_id == job_id, Enterprise.chain_state != ChainState.CONFIRMED.value)))
    if leftover:
        service.reconcile(leftover)
    if progress:
        progress(next_row - 1)

    seen: set[str] = set()

    def confirm(ids: list[int], receipt: Receipt | None) -> int:
        if receipt is None:
            service.reconcile(ids)  # someone registered one of these meanwhile: decide per row
            if progress:
                progress(len(ids))
            return 0
        with sessions.begin() as s:
            s.execute(update(Enterprise).where(Enterprise.id.in_(ids)).values(
                chain_state=ChainState.CONFIRMED.value, chain_status=EnterpriseStatus.ACTIVE.value,
                block_number=receipt.block_number))
        if progress:
            progress(len(ids))  # a row is done once the chain holds it
        return len(ids)

    def flush(rows: list[tuple[int, str, str]]) -> Delivery | None:
        accepted: list[dict] = []
        rejected: list[dict] = []
        candidates: dict[str, tuple[int, str]] = {}
        for number, raw, name in rows:
            try:
                code = validate(raw)
            except UsccError as exc:
                rejected.append(dict(job_id=job_id, row=number, uscc=raw[:64], reason_code=exc.code, message=exc.message))
                continue
            if not name:
                rejected.append(dict(job_id=job_id, row=number, uscc=code, reason_code="name_empty",
                                     message="企业名称为空 / the name is empty"))
            elif code in seen or code in candidates:
                rejected.append(dict(job_id=job_id, row=number, uscc=code, reason_code="duplicate_in_file",
                                     message="文件中重复 / this USCC appears earlier in the file"))
            else:
                candidates[code] = (number, name)
        with sessions.begin() as s:
            existing = set(s.scalars(select(Enterprise.uscc).where(Enterprise.uscc.in_(list(candidates)))))
            for code, (number, name) in candidates.items():
                if code in existing:
                    rejected.append(dict(job_id=job_id, row=number, uscc=code, reason_code="enterprise_exists",
                                         message="该企业已登记 / already registered"))
                else:
                    accepted.append(dict(uscc=code, name=name[:200], uscc_key=chain_key(code),
                                         status=EnterpriseStatus.ACTIVE.value, chain_state=ChainState.PENDING.value,
                                         import_job_id=job_id))
            if accepted:
                s.execute(insert(Enterprise), accepted)
            if rejected:
                s.execute(insert(ImportRejection), rejected)
            s.execute(update(ImportJob).where(ImportJob.id == job_id).values(
                next_row=rows[-1][0] + 1, accepted=ImportJob.accepted + len(accepted),
                rejected=ImportJob.rejected + len(rejected)))
            ids = list(s.scalars(select(Enterprise.id).where(Enterprise.uscc.in_([a["uscc"] for a in accepted]))))
        seen.update(candidates)
        if progress:
            progress(len(rows) - len(accepted))  # refused rows are done now; the others on chain
        if not accepted:
            return None
        keys = [a["uscc_key"] for a in accepted]
        return Delivery(ids, partial(chain.ledger.send_register_batch, chain.registrar, keys), partial(confirm, ids),
                        already=("EnterpriseAlreadyRegistered",))

    def deliveries() -> Iterator[Delivery]:
        chunk: list[tuple[int, str, str]] = []
        for row in _rows(path, next_row, encoding):
            chunk.append(row)
            if len(chunk) >= batch_size:
                if (delivery := flush(chunk)) is not None:
                    yield delivery
                chunk = []
        if chunk and (delivery := flush(chunk)) is not None:
            yield delivery

    # Chunks are read, written ahead and sent as the outbox's window frees up: a file of any
    # size streams through with `in_flight` batches on their way at a time.
    Outbox(sessions, chain.client, in_flight).deliver("import", ENTERPRISES, deliveries())
    with sessions.begin() as s:
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(finished_at=datetime.now(timezone.utc)))
    return _report(service, job_id, total, resumed=resumed, finished=False, rejections_file=rejections_file)


def _report(service: EnterpriseService, job_id: int, total: int, *, resumed: bool, finished: bool,
            rejections_file: Path) -> ImportReport:
    with service.sessions() as s:
        job = s.get(ImportJob, job_id)
        rejections = list(s.scalars(select(ImportRejection).where(ImportRejection.job_id == job_id)
                                    .order_by(ImportRejection.row)))
    written = write_rejections(rejections_file, ["row", "uscc", "reason_code", "message"],
                               ([r.row, r.uscc, r.reason_code, r.message] for r in rejections))
    return ImportReport(job_id, total, job.accepted, job.rejected, resumed, finished, written)
