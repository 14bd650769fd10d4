"""Records: issued by the authority of their category, anchored one batch per issuance with the
issuer's own chain account, status changes witnessed on chain, verified item by item.

Write order: the record (with its salted leaf) is written ahead in the database, then issued on
chain; a status change is written to the database first (so the very next scan sees it), then
sent. `reconcile` finishes whatever a crash or a chain outage left pending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time

from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from chain import keys as key_files
from chain.errors import ChainError, TransactionReverted
from chain.ledger import RecordStatus
from chain.proof import Anchor, LeafInput, ProofBundle
from chain.verdict import Check, Status, combine
from codes.uscc import chain_key
from materials_api.identity.api_keys import Principal
from materials_api.platform.config import Settings
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.models import ChainState
from materials_api.platform.runtime import FUNDING_WEI, ChainContext
from materials_api.records.kinds import KINDS, category_of
from materials_api.records.models import IssuerAccount, Record
from materials_api.registry.models import Enterprise

log = logging.getLogger("qiyema.records")

STATUSES = ("valid", "suspended", "revoked", "removed")
TO_CHAIN = {"valid": RecordStatus.VALID, "suspended": RecordStatus.SUSPENDED, "revoked": RecordStatus.REVOKED,
            "removed": RecordStatus.REVOKED}


class RecordError(ServiceError):
    pass


def content_hash(uscc: str, kind: str, number: str | None, data: dict, valid_from: int | None,
                 valid_until: int | None) -> str:
    canonical = json.dumps({"uscc": uscc, "kind": kind, "number": number, "data": data, "valid_from": valid_from,
                            "valid_until": valid_until}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class TtlCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key, compute):
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
        if hit and (self.ttl is None or now - hit[0] < self.ttl):
            return hit[1]
        value = compute()
        with self._lock:
            self._data[key] = (now, value)
        return value

    def forget(self, key) -> None:
        with self._lock:
            self._data.pop(key, None)


class RecordService:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, settings: Settings):
        self.sessions = sessions
        self.chain = chain
        self.settings = settings
        # Anchors never change once made; roles may, so they are re-read every few seconds. A
        # record's chain status is re-read after 2 s: a change made through this service is in
        # the database (the record) and shows at once; the chain only confirms it.
        self._anchors = TtlCache(None)
        self._roles = TtlCache(10.0)
        self._chain_status = TtlCache(2.0)
        self._granted: set[tuple[int, str]] = set()

    # --- issuer accounts -------------------------------------------------------------------
    def issuer_account(self, organisation_id: int, category: str) -> LocalAccount:
        """The organisation's chain account, holding the category's issuer role on this chain
        (checked on chain once per process, so a reset chain gets its grants again)."""
        account = key_files.load_or_create(self.settings.keys_dir / f"org-{organisation_id}.eth")
        if (organisation_id, category) in self._granted:
            return account
        ledger = self.chain.ledger
        self.chain.client.fund(account.address, FUNDING_WEI // 100)
        if not ledger.has_role(f"issuer:{category}", account.address):
            role = ledger.role(f"issuer:{category}")
            self.chain.client.transact(self.chain.governor, ledger.contract.functions.grantRole(role, account.address))
        with self.sessions.begin() as s:
            row = s.get(IssuerAccount, organisation_id)
            if row is None:
                s.add(IssuerAccount(organisation_id=organisation_id, address=account.address, categories=category))
            elif category not in row.categories.split(","):
                row.categories = ",".join(sorted(set(filter(None, row.categories.split(","))) | {category}))
        self._granted.add((organisation_id, category))
        return account

    # --- issuing --------------------------------------------------------------------------------
    def issue(self, enterprise: Enterprise, kind_code: str, principal: Principal, *, number: str | None,
              title: str | None, data: dict, valid_from: int | None, valid_until: int | None) -> Record:
        kind = KINDS.get(kind_code)
        if kind is None:
            raise RecordError(Kind.INVALID, "unknown_record_kind", f"no record kind {kind_code!r}")
        allowed = category_of(principal)
        if allowed != kind.category:
            raise RecordError(Kind.FORBIDDEN, "category_forbidden",
                              f"{principal.organisation} may issue {allowed or 'no'} records, not {kind.category}")
        if valid_from and valid_until and valid_until <= valid_from:
            raise RecordError(Kind.INVALID, "validity_window", "valid_until must be after valid_from")
        digest = content_hash(enterprise.uscc, kind.code, number, data, valid_from, valid_until)
        salt = secrets.token_bytes(32)
        leaf = LeafInput(bytes.fromhex(digest), chain_key(enterprise.uscc), kind.code, 1, valid_until or 0, 0,
                         salt).hash()
        with self.sessions.begin() as s:
            record = Record(enterprise_id=enterprise.id, kind=kind.code, category=kind.category, number=number,
                            title=(title or kind.name)[:200], data=json.dumps(data, sort_keys=True, ensure_ascii=False),
                            valid_from=valid_from, valid_until=valid_until, status="valid",
                            issuer_organisation_id=principal.organisation_id, issuer_key_id=principal.key_id,
                            content_sha256=digest, salt=salt, leaf=leaf, leaf_index=0, root=leaf, proof="[]",
                            chain_state=ChainState.PENDING.value)
            s.add(record)
            s.flush()
            record_id = record.id
        self._witness(record_id)
        return self.get(record_id)

    def set_status(self, record: Record, status: str, reason: str | None, principal: Principal) -> Record:
        if status not in STATUSES:
            raise RecordError(Kind.INVALID, "unknown_status", f"status is one of {', '.join(STATUSES)}")
        if category_of(principal) != record.category:
            raise RecordError(Kind.FORBIDDEN, "category_forbidden",
                              f"{principal.organisation} may not change {record.category} records")
        if record.status == status:
            raise RecordError(Kind.CONFLICT, "status_unchanged", f"record {record.id} is already {status}")
        if status == "removed" and record.kind != "abnormal_listing":
            raise RecordError(Kind.INVALID, "unknown_status", "only an abnormal-list entry is removed; revoke other records")
        with self.sessions.begin() as s:
            s.execute(update(Record).where(Record.id == record.id).values(
                status=status, status_reason=(reason or "")[:200] or None, chain_state=ChainState.PENDING.value))
        self._witness(record.id)
        return self.get(record.id)

    def _witness(self, record_id: int) -> None:
        try:
            self.reconcile([record_id])
        except ChainError as exc:
            log.warning("record %d: chain write deferred: %s", record_id, exc)

    def reconcile(self, ids: list[int] | None = None) -> int:
        """Make the chain witness each record as the database holds it; idempotent."""
        with self.sessions() as s:
            q = select(Record).where(Record.chain_state != ChainState.CONFIRMED.value)
            if ids is not None:
                q = q.where(Record.id.in_(ids))
            rows = list(s.scalars(q.order_by(Record.id)))
        ledger = self.chain.ledger
        for r in rows:
            account = self.issuer_account(r.issuer_organisation_id, r.category)
            onchain = ledger.record_of(r.leaf)
            if onchain.status == RecordStatus.NONE:
                try:
                    tx = ledger.send_issue_records(account, r.category, r.root, [r.leaf])
                except TransactionReverted as exc:
                    if exc.error not in ("RecordAlreadyIssued", "RootAlreadyAnchored"):
                        raise
                else:
                    with self.sessions.begin() as s:
                        s.execute(update(Record).where(Record.id == r.id).values(
                            chain_state=ChainState.SENT.value, tx_hash=tx))
                    receipt = self.chain.client.wait(tx)
                    with self.sessions.begin() as s:
                        s.execute(update(Record).where(Record.id == r.id).values(block_number=receipt.block_number))
                onchain = ledger.record_of(r.leaf)
            want = TO_CHAIN[r.status]
            if onchain.status != want:
                tx = ledger.send_set_record_status(account, r.category, r.leaf, want, r.status)
                self.chain.client.wait(tx)
            with self.sessions.begin() as s:
                s.execute(update(Record).where(Record.id == r.id, Record.status == r.status).values(
                    chain_state=ChainState.CONFIRMED.value, chain_status=r.status))
        return len(rows)

    def requeue_lost(self) -> int:
        """At start: records the database holds as witnessed but the chain does not know (a reset
        chain, a node that lost its latest state) go back to pending, to be issued again."""
        with self.sessions() as s:
            rows = list(s.execute(select(Record.id, Record.leaf).where(
                Record.chain_state == ChainState.CONFIRMED.value)))
        lost = [r.id for r in rows if self.chain.ledger.record_of(r.leaf).status == RecordStatus.NONE]
        if lost:
            log.warning("%d record(s) unknown to the chain: issuing them again", len(lost))
            with self.sessions.begin() as s:
                s.execute(update(Record).where(Record.id.in_(lost)).values(
                    chain_state=ChainState.PENDING.value, chain_status=None, tx_hash=None, block_number=None))
        return len(lost)

    # --- reads ------------------------------------------------------------------------------------
    def get(self, record_id: int) -> Record:
        with self.sessions() as s:
            record = s.get(Record, record_id)
        if record is None:
            raise RecordError(Kind.NOT_FOUND, "record_not_found", f"no record {record_id}")
        return record

    def for_enterprise(self, enterprise_id: int) -> list[Record]:
        with self.sessions() as s:
            return list(s.scalars(select(Record).where(Record.enterprise_id == enterprise_id)
                                  .order_by(Record.category, Record.id)))

    def bundle(self, record: Record, uscc: str) -> ProofBundle:
        if record.chain_state == ChainState.PENDING.value and record.block_number is None:
            raise RecordError(Kind.CONFLICT, "not_anchored", f"record {record.id} is not on chain yet")
        return ProofBundle(
            leaf=LeafInput(bytes.fromhex(record.content_sha256), chain_key(uscc), record.kind, 1,
                           record.valid_until or 0, record.leaf_index, record.salt),
            proof=[bytes.fromhex(p) for p in json.loads(record.proof)], root=record.root,
            anchor=Anchor(self.chain.client.chain_id, self.chain.deployment.address, record.tx_hash or "",
                          record.block_number or 0))

    # --- verification -------------------------------------------------------------------------------
    def verify(self, record: Record, uscc: str, now: int | None = None) -> tuple[Status, list[Check]]:
        """integrity (the stored record still hashes to its leaf), anchor (its root is on
        chain), issuer (the anchorer holds this category's issuer role), status (in force:
        not suspended, revoked, removed or expired, in the register and on chain)."""
        now = int(time.time()) if now is None else now
        checks: list[Check] = []
        digest = content_hash(uscc, record.kind, record.number, json.loads(record.data), record.valid_from,
                              record.valid_until)
        leaf = LeafInput(bytes.fromhex(digest), chain_key(uscc), record.kind, 1, record.valid_until or 0,
                         record.leaf_index, record.salt).hash()
        if leaf == record.leaf:
            checks.append(Check("integrity", Status.VALID, "content_matches", "the record is as issued"))
        else:
            checks.append(Check("integrity", Status.INVALID, "content_altered", "the record differs from what was issued"))
        ledger = self.chain.ledger
        try:
            anchor = self._anchors.get(record.root, lambda: ledger.anchor_of(record.root))
            if anchor is None:
                self._anchors.forget(record.root)  # not yet: ask again next time
                state = Status.ERROR if record.chain_state != ChainState.CONFIRMED.value else Status.INVALID
                checks.append(Check("anchor", state, "not_on_chain_yet" if state == Status.ERROR else "root_not_anchored",
                                    "the chain does not (yet) hold this record"))
            else:
                checks.append(Check("anchor", Status.VALID, "root_anchored", f"anchored by {anchor.anchorer}"))
                is_issuer = self._roles.get((record.category, anchor.anchorer),
                                            lambda: ledger.has_role(f"issuer:{record.category}", anchor.anchorer))
                checks.append(Check("issuer", Status.VALID, "category_issuer",
                                    f"issued by a holder of the {record.category} issuer role") if is_issuer else
                              Check("issuer", Status.INVALID, "not_category_issuer",
                                    f"the anchorer does not hold the {record.category} issuer role"))
            onchain = self._chain_status.get(record.leaf, lambda: ledger.record_of(record.leaf))
        except ChainError as exc:
            done = {c.name for c in checks}
            for name in ("anchor", "issuer"):
                if name not in done:
                    checks.append(Check(name, Status.ERROR, "chain_unavailable", str(exc)))
            onchain = None
        status = self._status_check(record, onchain, now)
        checks.append(status)
        return combine(checks), checks

    @staticmethod
    def _status_check(record: Record, onchain, now: int) -> Check:
        # The database is the record: a change there shows in the very next scan, before the
        # chain has witnessed it; the chain can only make the answer stricter.
        if record.status != "valid":
            label = {"suspended": "暂停", "revoked": "撤销/吊销", "removed": "已移出"}[record.status]
            return Check("status", Status.INVALID, f"record_{record.status}", f"{label}: {record.status_reason or ''}")
        if record.valid_until and record.valid_until < now:
            return Check("status", Status.INVALID, "record_expired", "the validity window has ended")
        if record.valid_from and record.valid_from > now:
            return Check("status", Status.INVALID, "record_not_yet_valid", "the validity window has not begun")
        if onchain is None:
            return Check("status", Status.ERROR, "chain_unavailable", "the chain's view could not be read")
        if onchain.status in (RecordStatus.SUSPENDED, RecordStatus.REVOKED):
            return Check("status", Status.INVALID, "record_revoked_on_chain", "the chain holds it as not in force")
        return Check("status", Status.VALID, "in_force", "in force")
