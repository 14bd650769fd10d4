"""One scan, different views: what the public, a bank, an inspector and the enterprise itself
see of an enterprise, each item with its own verdict."""

from __future__ import annotations

import json
from typing import Callable

from chain.verdict import Verdict
from materials_api.bank.access import AccessPolicy
from materials_api.identity.api_keys import Principal
from materials_api.platform.cache import TtlCache
from materials_api.platform.timefmt import utc_iso
from materials_api.records.kinds import CATEGORIES, KINDS, mask
from materials_api.records.visibility import GROUPS, audience, record_visible


def record_item(record, audience_: str, verdict: Verdict, principal: Principal | None) -> dict | None:
    if not record_visible(record, audience_, principal):
        return None
    kind = KINDS[record.kind]
    group = CATEGORIES[record.category].group
    data = json.loads(record.data)
    if audience_ not in ("enterprise", "inspector"):
        data = {k: (mask(v) if k in kind.personal else v) for k, v in data.items()}
    return {
        "id": record.id, "kind": record.kind, "kind_name": kind.name, "category": record.category,
        "category_name": CATEGORIES[record.category].name, "group": group, "number": record.number,
        "title": record.title, "data": data, "valid_from": record.valid_from, "valid_until": record.valid_until,
        "status": record.status, "verdict": verdict.as_dict(),
        "issued_at": utc_iso(record.created_at) if getattr(record, "created_at", None) else None,
        "proof": f"/api/v1/records/{record.id}/proof", "certificate": f"/certificates/records/{record.id}",
    }


def _stamp_query():
    """The enterprise's status, the newest change among its records and their number, key
    rotations and compromises, and the status changes the chain mirror saw (made on chain by another instance or
    system): anything that moves changes a scan's answer. Built once."""
    from sqlalchemy import bindparam, case, func, select

    from materials_api.codes.models import CodeKey
    from materials_api.platform.mirror import STATUS_CHANGED
    from materials_api.platform.models import ChainMirrorMark
    from materials_api.records.models import Record
    from materials_api.registry.models import Enterprise

    e, r, k, m = Enterprise.__table__, Record.__table__, CodeKey.__table__, ChainMirrorMark.__table__
    return select(
        e.c.status, e.c.updated_at,
        select(func.max(r.c.updated_at)).where(r.c.enterprise_id == e.c.id).scalar_subquery(),
        select(func.count()).where(r.c.enterprise_id == e.c.id).scalar_subquery(),
        # One number moved by a key's retirement and again by its compromise.
        select(func.coalesce(func.sum(case((k.c.status == "retired", 1), (k.c.status == "compromised", 1025),
                                           else_=0)), 0)).scalar_subquery(),
        select(m.c.changes).where(m.c.name == STATUS_CHANGED).scalar_subquery(),
    ).where(e.c.id == bindparam("enterprise_id"))


_STAMP = _stamp_query()


def _enterprise_query():
    from sqlalchemy import bindparam, select

    from materials_api.registry.models import Enterprise

    e = Enterprise.__table__
    return select(e.c.id, e.c.uscc, e.c.name, e.c.status).where(e.c.uscc == bindparam("uscc"))


_ENTERPRISE = _enterprise_query()  # the scanned enterprise, as a row (what a view shows of it)


class ScanViews:
    """Builds the view a verified code opens for the caller, logging every non-public read.

    The public view (most scans) is cached per enterprise, keyed by a stamp read with one query:
    the enterprise's status and the newest change among its records. Any change made through
    the service moves the stamp, so the very next scan rebuilds the view; the cache also
    expires after 2 s, the same bound as the chain-status cache of records."""

    PUBLIC_TTL = 2.0

    def __init__(self, sessions, records, access: AccessPolicy, materials):
        self.sessions = sessions
        self._engine = sessions.kw["bind"]  # the stamp: a Core statement, once a scan
        self.records = records
        self.access = access
        self.materials = materials
        # Bounded (least recently used first out): (stamp, view) per enterprise, (stamp, answer)
        # per static code; their age is the cache's own.
        self._public = TtlCache(self.PUBLIC_TTL, max_entries=20_000)
        self._answers = TtlCache(self.PUBLIC_TTL, max_entries=20_000)
        self._refreshing: set[str] = set()
        # Told of every look-up in the two caches (`/metrics` counts hits and misses).
        self.on_lookup: Callable[[str, bool], None] = lambda cache, hit: None
        import threading

        self._refresh_lock = threading.Lock()

    def stamp(self, enterprise_id: int) -> tuple:
        """What a cached answer or view of this enterprise is keyed by; read once a scan."""
        with self._engine.connect() as c:
            return tuple(c.execute(_STAMP, {"enterprise_id": enterprise_id}).first() or ())

    def cached_answer(self, code: str, enterprise_id: int | None, stamp: tuple, cache: str = "scan_answer"):
        """The answer given to this exact static code, if nothing that could change it
        (enterprise status, its records, key rotations) has moved since. After 2 s one caller
        rebuilds it (the chain-side facts are re-read) while the others keep the stamp-valid
        answer, so a busy code never sends every request to rebuild at once."""
        answer = self._cached_answer(code, enterprise_id, stamp)
        self.on_lookup(cache, answer is not None)
        return answer

    def _cached_answer(self, code: str, enterprise_id: int | None, stamp: tuple):
        import time as _time

        hit = self._answers.peek(code)
        if hit is None or enterprise_id is None:
            return None
        kept_at, (kept_stamp, answer) = hit
        if kept_stamp != stamp:
            return None
        if _time.monotonic() - kept_at < self.PUBLIC_TTL:
            return answer
        with self._refresh_lock:
            if code in self._refreshing:
                return answer
            self._refreshing.add(code)
        return None

    def remember_answer(self, code: str, answer, stamp: tuple) -> None:
        """Keep the answer under the stamp read before it was built (a change made meanwhile
        then moves the stamp, and the next scan builds it again)."""
        self._answers.put(code, (stamp, answer))
        with self._refresh_lock:
            self._refreshing.discard(code)

    def view(self, verdict, principal: Principal | None, stamps: dict[int, tuple] | None = None) -> dict | None:
        """`stamps`: enterprise id -> its stamp, as already read by the caller for this scan."""
        if verdict.facts.get("uscc") is None or verdict.status.value == "INVALID" and verdict.facts.get("enterprise") is None:
            return None
        forged = any(c.name in ("origin", "signature", "format") and c.status.value == "INVALID" for c in verdict.checks)
        if forged:
            return None  # a forged or copied code shows nothing of the enterprise it names
        with self._engine.connect() as c:
            enterprise = c.execute(_ENTERPRISE, {"uscc": verdict.facts["uscc"]}).first()
        if enterprise is None:
            return None
        who = audience(principal, enterprise.uscc)
        if who == "public":
            import time as _time

            stamp = (stamps or {}).get(enterprise.id) or self.stamp(enterprise.id)
            hit = self._public.peek(enterprise.id)
            fresh = hit is not None and hit[1][0] == stamp and _time.monotonic() - hit[0] < self.PUBLIC_TTL
            self.on_lookup("public_view", fresh)
            if fresh:
                return hit[1][1]
            view = self._build(enterprise, who, principal, verdict)
            self._public.put(enterprise.id, (stamp, view))
            return view
        return self._build(enterprise, who, principal, verdict)

    def _build(self, enterprise, who: str, principal: Principal | None, verdict) -> dict:
        items = []
        records = self.records.for_enterprise(enterprise.id)
        for record, checked in zip(records, self.records.verify_all(records, enterprise.uscc)):
            item = record_item(record, who, checked, principal)
            if item:
                items.append(item)
        view = {"audience": who, "enterprise": {"uscc": enterprise.uscc, "name": enterprise.name,
                                                "status": enterprise.status}}
        for group in ("licence", "permit", "regulatory", "credit", "inspection", "receipt"):
            if group in GROUPS[who]:
                view[group] = [i for i in items if i["group"] == group]
        purpose = (verdict.facts.get("scope") or {}).get("purpose")
        if who == "bank":
            view["materials"] = self._consented(verdict, principal, enterprise)
        if who == "enterprise":
            view["materials"] = [self._material_item(m) for m in self.materials.list(enterprise)
                                 if m.state in ("anchored", "confirmed", "uploaded")]
            view["access_log"] = [{"at": utc_iso(e.created_at), "organisation": e.organisation, "role": e.role,
                                   "action": e.action, "target": e.target, "purpose": e.purpose,
                                   "outcome": e.outcome} for e in self.access.entries(enterprise, limit=50)]
        self.access.scan_view(principal, enterprise, who, purpose)
        return view

    def _consented(self, verdict, principal: Principal, enterprise) -> dict:
        grant_id = (verdict.facts.get("scope") or {}).get("grant_id")
        if not grant_id:
            return {"status": "none", "items": []}
        if verdict.status.value != "VALID":
            # An expired, used-up or otherwise failing code carries no consent any more.
            return {"status": "denied", "reason": "the code is not valid (expired, used or failing a check)",
                    "items": []}
        grant, reason = self.access.grant_use(principal, enterprise, grant_id)
        if grant is None:
            return {"status": "denied", "reason": reason, "items": []}
        items = [self._material_item(m) for m in self.access.covered_materials(grant)]
        return {"status": "granted", "grant_id": grant.id, "purpose": grant.purpose, "expires_at": grant.expires_at,
                "items": items}

    def _material_item(self, m) -> dict:
        t = self.materials.catalogue.types.get(m.type_code)
        return {"id": m.id, "folder": m.type_code, "folder_name": t.name if t else m.type_code, "title": m.title,
                "sha256": m.sha256, "state": m.state, "label": m.label, "valid_until": m.valid_until,
                "content": f"/api/v1/materials/{m.id}/content", "proof": f"/api/v1/materials/{m.id}/proof"}
