"""Records from the authorities' own systems: changes applied in bulk, idempotently.

A change names the record by where it lives in its issuer's system (`source_id`) and which
version of it this is (`source_version`, a number that grows with every change there). Applying
a list of changes: a version already held is a replay (nothing changes; a different content
under a version already held is refused), an older one is refused, a newer one supersedes — a
status change or a new title in place, a change of content as a new record (its own leaf) that
supersedes the old one, whose leaf is then revoked on chain. The whole list is written ahead in
one transaction, sealed into Merkle batches; the chain witnesses it afterwards (the records
loop), and the very next scan already shows it.

Used by `POST /api/v1/records/batch` (the feed), `qiyema records import` and `qiyema records
follow`; one way to apply a change, whoever sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from datetime import time as dtime
from typing import Any, Callable, Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from codes.uscc import UsccError, validate
from materials_api.identity.api_keys import Principal
from materials_api.platform.errors import Kind
from materials_api.platform.models import ChainState
from materials_api.records.kinds import KINDS, category_of
from materials_api.records.models import Record
from materials_api.records.sealing import seal
from materials_api.records.service import LOOKUP_CHUNK, STATUSES, RecordError, content_hash
from materials_api.registry.models import Enterprise

MAX_CHANGES = 10_000  # a call of the feed
FIELDS = ("uscc", "kind", "number", "title", "data", "valid_from", "valid_until", "status", "reason",
          "source_id", "source_version")
_R = Record.__table__
_E = Enterprise.__table__


class ChangeRefused(RecordError):
    """One change refused (reported in its result; the others go on)."""

    def __init__(self, code: str, message: str):
        super().__init__(Kind.INVALID, code, message)


@dataclass(frozen=True)
class RecordChange:
    """One change as its issuer's system states it, checked for form."""

    uscc: str
    kind: str
    number: str | None
    title: str | None
    data: dict
    data_json: str  # canonical: keys sorted
    valid_from: int | None
    valid_until: int | None
    status: str
    reason: str | None
    source_id: str
    source_version: int


@dataclass(frozen=True)
class ChangeResult:
    index: int
    outcome: str  # created | amended | status_changed | updated | unchanged | refused
    record_id: int | None = None
    reason: str | None = None
    message: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _text(raw: dict, name: str, limit: int, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ChangeRefused(f"{name}_missing", f"缺少字段 {name} / {name} is required")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ChangeRefused(f"{name}_invalid", f"字段 {name} 应为文本 / {name} is text")
    value = str(value).strip()
    if len(value) > limit:
        raise ChangeRefused("field_too_long", f"字段 {name} 超过 {limit} 个字符 / {name} is longer than {limit} characters")
    return value


def _day(raw: dict, name: str, end: bool) -> int | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    try:
        d = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        d = None
    if d is None:
        raise ChangeRefused("date_format", f"{name} 应为 YYYY-MM-DD 格式的日期 / {name} is a date written YYYY-MM-DD, not {str(value)[:40]!r}")
    return int(datetime.combine(d, dtime(23, 59, 59) if end else dtime(0, 0), tzinfo=timezone.utc).timestamp())


def parse_change(raw: Any, category: str) -> RecordChange:
    """A change checked for form and for the caller's category; raises ChangeRefused."""
    if isinstance(raw, ChangeRefused):  # refused before it got here (an import's unreadable line)
        raise raw
    if not isinstance(raw, dict):
        raise ChangeRefused("change_not_object", "每条变更应为一个 JSON 对象 / a change is a JSON object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ChangeRefused("unknown_field", f"未知字段 / unknown field(s): {', '.join(unknown)[:200]}")
    source_id = _text(raw, "source_id", 100, required=True)
    version = raw.get("source_version")
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version.strip())
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**62:
        raise ChangeRefused("source_version_invalid", "source_version 应为不小于 1 的整数 / source_version is a whole number ≥ 1")
    try:
        uscc = validate(_text(raw, "uscc", 64, required=True))
    except UsccError as exc:
        raise ChangeRefused(exc.code, exc.message) from None
    kind = KINDS.get(_text(raw, "kind", 40, required=True))
    if kind is None:
        raise ChangeRefused("unknown_record_kind", f"没有这种记录类型 / no record kind {raw.get('kind')!r}")
    if kind.category != category:
        raise ChangeRefused("category_forbidden", f"本机关只能写入 {category} 类记录 / this issuer writes {category} records, not {kind.category}")
    if kind.code == "inspection":  # its photo's type and hash would be whatever the feed said
        raise ChangeRefused("inspection_needs_photo", "检查记录须连同现场照片提交 / an inspection is recorded with its photo: POST /api/v1/inspections")
    data = raw.get("data") or {}
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise ChangeRefused("data_not_object", "data 应为 JSON 对象 / data is a JSON object") from None
    if not isinstance(data, dict):
        raise ChangeRefused("data_not_object", "data 应为 JSON 对象 / data is a JSON object")
    data_json = json.dumps(data, sort_keys=True, ensure_ascii=False)  # as stored
    if len(data_json) > 20_000:
        raise ChangeRefused("field_too_long", "data 超过 20,000 个字符 / data is longer than 20,000 characters")
    valid_from, valid_until = _day(raw, "valid_from", False), _day(raw, "valid_until", True)
    if valid_from and valid_until and valid_until <= valid_from:
        raise ChangeRefused("validity_window", "有效期止应晚于有效期起 / valid_until must be after valid_from")
    status = _text(raw, "status", 12) or "valid"
    if status not in STATUSES:
        raise ChangeRefused("unknown_status", f"status 只能是 {', '.join(STATUSES)} / status is one of {', '.join(STATUSES)}")
    if status == "removed" and kind.code != "abnormal_listing":
        raise ChangeRefused("unknown_status", "只有经营异常名录记录可以移出，其他记录请撤销 / only an abnormal-list entry is removed; revoke other records")
    return RecordChange(uscc, kind.code, _text(raw, "number", 100), _text(raw, "title", 200), data, data_json,
                        valid_from, valid_until, status, _text(raw, "reason", 200), source_id, version)


@dataclass
class _Held:
    """The newest version of a source record, as this call has left it so far."""

    version: int
    digest: str
    kind: str
    status: str
    record_id: int | None = None  # a row already stored
    position: int | None = None  # a row this call creates (index into its new rows)


class RecordFeed:
    def __init__(self, sessions, tree_hash: str):
        self.sessions = sessions
        self.tree_hash = tree_hash  # the profile's hash for leaves and trees

    def apply(self, principal: Principal, changes: Sequence[Any],
              then: Callable[[Session, list[ChangeResult]], None] | None = None) -> list[ChangeResult]:
        """Apply `changes` in order, all written ahead in one transaction; a result per change.
        `then(session, results)` runs in that same transaction (an import's checkpoint, a
        follower's cursor), so it commits with the changes or not at all."""
        category = category_of(principal)
        if category is None:
            raise RecordError(Kind.FORBIDDEN, "category_forbidden", f"{principal.organisation} issues no records")
        results: list[ChangeResult | None] = [None] * len(changes)
        parsed: list[tuple[int, RecordChange]] = []
        for i, raw in enumerate(changes):
            try:
                parsed.append((i, parse_change(raw, category)))
            except ChangeRefused as exc:
                results[i] = ChangeResult(i, "refused", reason=exc.code, message=exc.message)
        org = principal.organisation_id
        with self.sessions.begin() as s:
            # Core statements on the session's connection: thousands of rows a call, no ORM
            # objects wanted (the ORM's row handling was a tenth of an import's time).
            db = s.connection()
            enterprises: dict[str, int] = {}
            usccs = sorted({c.uscc for _, c in parsed})
            for k in range(0, len(usccs), LOOKUP_CHUNK):
                enterprises.update(db.execute(select(_E.c.uscc, _E.c.id)
                                             .where(_E.c.uscc.in_(usccs[k:k + LOOKUP_CHUNK]))).all())
            held: dict[str, _Held] = {}
            sources = sorted({c.source_id for _, c in parsed})
            for k in range(0, len(sources), LOOKUP_CHUNK):
                for r in db.execute(select(_R.c.id, _R.c.source_id, _R.c.source_version, _R.c.content_sha256,
                                          _R.c.kind, _R.c.status).where(
                        _R.c.issuer_organisation_id == org, _R.c.source_id.in_(sources[k:k + LOOKUP_CHUNK]),
                        _R.c.superseded_by_id.is_(None))):
                    held[r.source_id] = _Held(r.source_version or 0, r.content_sha256, r.kind, r.status, r.id)

            new_rows: list[dict] = []
            new_usccs: list[str] = []
            created_at: dict[int, int] = {}  # index of the change -> position of the new row it created
            superseded: list[tuple[int | None, int | None, int]] = []  # (old id, old position, new position)
            in_place: dict[int, dict] = {}  # stored record id -> its new values
            refers: list[tuple[int, int]] = []  # (index of a change, position of the new row it changed)

            def new_row(i: int, c: RecordChange, enterprise_id: int, digest: str) -> int:
                new_rows.append(dict(
                    enterprise_id=enterprise_id, kind=c.kind, category=category, number=c.number,
                    title=(c.title or KINDS[c.kind].name)[:200],
                    data=c.data_json, valid_from=c.valid_from,
                    valid_until=c.valid_until, status=c.status, status_reason=c.reason,
                    issuer_organisation_id=org, issuer_key_id=principal.key_id, content_sha256=digest,
                    chain_state=ChainState.PENDING.value, source_id=c.source_id, source_version=c.source_version))
                new_usccs.append(c.uscc)
                created_at[i] = len(new_rows) - 1
                return len(new_rows) - 1

            for i, c in parsed:
                enterprise_id = enterprises.get(c.uscc)
                if enterprise_id is None:
                    results[i] = ChangeResult(i, "refused", reason="enterprise_not_found",
                                              message=f"no enterprise with USCC {c.uscc}")
                    continue
                digest = content_hash(c.uscc, c.kind, c.number, c.data, c.valid_from, c.valid_until)
                h = held.get(c.source_id)
                if h is None:
                    held[c.source_id] = _Held(c.source_version, digest, c.kind, c.status,
                                              position=new_row(i, c, enterprise_id, digest))
                    results[i] = ChangeResult(i, "created")
                elif c.source_version < h.version:
                    results[i] = ChangeResult(i, "refused", h.record_id, "stale_version",
                                              f"version {c.source_version} is older than the one held ({h.version})")
                elif c.source_version == h.version:
                    if (h.digest, h.kind, h.status) == (digest, c.kind, c.status):
                        results[i] = ChangeResult(i, "unchanged", h.record_id)
                        if h.position is not None:  # repeated within this call
                            refers.append((i, h.position))
                    else:
                        results[i] = ChangeResult(i, "refused", h.record_id, "source_version_reused",
                                                  f"version {c.source_version} is held with other content")
                elif (h.digest, h.kind) == (digest, c.kind):  # same content: status or title, in place
                    values = dict(status=c.status, status_reason=c.reason, source_version=c.source_version,
                                  title=(c.title or KINDS[c.kind].name)[:200])
                    if h.position is not None:
                        new_rows[h.position].update(values)
                        refers.append((i, h.position))
                    else:
                        if c.status != h.status:  # the chain witnesses the new status
                            values["chain_state"] = ChainState.PENDING.value
                        in_place.setdefault(h.record_id, {}).update(values)
                    outcome = "status_changed" if c.status != h.status else "updated"
                    results[i] = ChangeResult(i, outcome, h.record_id)
                    h.version, h.status = c.source_version, c.status
                else:  # new content: a new record supersedes the held one
                    position = new_row(i, c, enterprise_id, digest)
                    superseded.append((h.record_id, h.position, position))
                    held[c.source_id] = _Held(c.source_version, digest, c.kind, c.status, position=position)
                    results[i] = ChangeResult(i, "amended")

            if new_rows:
                seal(new_rows, new_usccs, self.tree_hash)
                ids = db.execute(insert(_R).returning(_R.c.id, sort_by_parameter_order=True), new_rows).scalars().all()
                for i, position in list(created_at.items()) + refers:
                    results[i] = ChangeResult(i, results[i].outcome, ids[position])
            for old_id, old_position, position in superseded:  # the old one revoked, pointing at the new
                in_place.setdefault(old_id if old_id is not None else ids[old_position], {}).update(
                    superseded_by_id=ids[position], status="revoked", chain_state=ChainState.PENDING.value,
                    status_reason=f"amended: superseded by version {new_rows[position]['source_version']}")
            # One statement per shape of change, many rows each (a call may change thousands).
            shapes: dict[tuple[str, ...], list[dict]] = {}
            for record_id, values in in_place.items():
                shapes.setdefault(tuple(sorted(values)), []).append({"record_id": record_id, **values})
            for columns, params in shapes.items():
                db.execute(update(_R).where(_R.c.id == bindparam("record_id"))
                          .values({c: bindparam(c) for c in columns}), params)
            done = [r for r in results if r is not None]
            if then is not None:
                then(s, done)
        return done
