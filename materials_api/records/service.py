"""Records: issued by the authority of their category, anchored one batch per issuance with the
issuer's own chain account, status changes witnessed on chain, verified item by item.

Write order: the record (with its salted leaf) is written ahead in the database, then issued on
chain; a status change is written to the database first (so the very next scan sees it), then
sent. `reconcile` finishes whatever a crash or a chain outage left pending.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.client import Receipt
from chain.errors import ChainError, TransactionReverted
from chain.ledger import RecordStatus, issuer_role
from chain.proof import Anchor, LeafInput, MerkleTree, ProofBundle, record_content_sha256
from chain.signers import Signer
from chain.verdict import Check, CheckName, Reason, Status, Step, Verdict, run, writer_check
from codes.uscc import chain_key
from materials_api.identity.api_keys import Principal
from chain.clock import SYSTEM, Clock
from materials_api.platform.config import Settings
from materials_api.platform.errors import Kind, ServiceError
from materials_api.platform.mirror import MirrorView
from materials_api.platform.models import UNWITNESSED, ChainState
from materials_api.platform.outbox import Delivery, Outbox, backlog
from materials_api.platform.runtime import FUNDING_WEI, ChainContext
from materials_api.records.kinds import KINDS, category_of
from materials_api.records.models import IssuerAccount, Record, RecordState
from materials_api.records.sealing import reseal, seal
from materials_api.registry.models import Enterprise

log = logging.getLogger("qiyema.records")

STATUSES = tuple(s.value for s in RecordState)
TO_CHAIN = {"valid": RecordStatus.VALID, "suspended": RecordStatus.SUSPENDED, "revoked": RecordStatus.REVOKED,
            "removed": RecordStatus.REVOKED}


_R = Record.__table__
# An amended record's earlier version is history, not one of the enterprise's records.
_CURRENT_OF_ENTERPRISE = (select(_R)
                          .where(_R.c.enterprise_id == bindparam("enterprise_id"), _R.c.superseded_by_id.is_(None))
                          .order_by(_R.c.category, _R.c.id))
ROOTS_PER_TX = 8  # batches of one issuer and category in one `issueRecordBatches` (~425,000 gas)
# Records a pass: 4 transactions of 8 batches in flight, so a block period and its confirmations
# are waited for once per 32,768 records, not per 8,192 (on Clique, 1 s blocks and 2 confirmations).
RECONCILE_CHUNK = 32_768
LOOKUP_CHUNK = 2_000  # values in one IN (…): well inside every database's limit
# What witnessing a record needs (not its data): read for thousands of records a pass.
_WITNESS_COLUMNS = (Record.id, Record.root, Record.leaf_index, Record.category, Record.status,
                    Record.issuer_organisation_id, Record.block_number)


class GrantPending(Exception):
    """An organisation's account lacks its issuer role on chain, and the caller may not grant it."""


class RecordError(ServiceError):
    pass


def content_hash(uscc: str, kind: str, number: str | None, data: dict, valid_from: int | None,
                 valid_until: int | None) -> str:
    """A record's content fingerprint as stored (hex): chain/proof.py's canonical form."""
    return record_content_sha256(uscc, kind, number, data, valid_from, valid_until).hex()


class RecordService:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, settings: Settings, outbox: Outbox | None = None,
                 clock: Clock = SYSTEM):
        self.sessions = sessions
        self.clock = clock  # records' validity and the mirror's head age
        self._engine = sessions.kw["bind"]  # Core connections where thousands of rows change at once
        self.chain = chain
        self.settings = settings
        # Verification reads the chain mirror, never the node: what the chain says (anchors,
        # the issuer's role, status changes made on chain) as of the mirror's head. The database
        # is the record: a change made through this service shows in the next scan; the mirror
        # can only make an answer stricter.
        self.mirror = MirrorView(sessions, cache_ttl=settings.mirror_cache_ttl)
        self._granted: set[tuple[int, str]] = set()
        self.outbox = outbox or Outbox(sessions, chain.client)

    # --- issuer accounts -------------------------------------------------------------------
    def issuer_account(self, organisation_id: int, category: str, *, grant: bool = True) -> Signer:
        """The organisation's chain account (its active generation in the key store), holding
        the category's issuer role on this chain (checked on chain once per process and key, so
        a reset chain gets its grants again). Only with `grant` does the governor fund it and
        grant the role; a request never does (`GrantPending`: the background worker will)."""
        account = self.chain.keys.account(f"org-{organisation_id}")
        if (organisation_id, category, account.address) in self._granted:
            return account
        ledger = self.chain.ledger
        if not grant:
            if not ledger.has_role(f"issuer:{category}", account.address):
                raise GrantPending(f"organisation {organisation_id} holds no {category} issuer role on chain yet")
            self._granted.add((organisation_id, category, account.address))
            return account
        self.chain.client.fund(account.address, FUNDING_WEI // 100, funder=self.chain.governor)
        ledger.grant_role(self.chain.governor, f"issuer:{category}", account.address)
        for attempt in (1, 2):
            try:
                with self.sessions.begin() as s:
                    row = s.get(IssuerAccount, organisation_id)
                    if row is None:
                        s.add(IssuerAccount(organisation_id=organisation_id, address=account.address,
                                            categories=category))
                    else:
                        row.address = account.address
                        if category not in row.categories.split(","):
                            row.categories = ",".join(sorted(set(filter(None, row.categories.split(","))) | {category}))
                break
            except IntegrityError:
                # Another process (an import's witnessing, another instance) wrote the row first:
                # read it and add this category to it.
                if attempt == 2:
                    raise
        self._granted.add((organisation_id, category, account.address))
        return account

    def grant_writers(self) -> int:
        """The background worker's step (never a request's): every organisation with a writing
        key or person (issuer, inspector, bank) gets its own funded chain account holding its
        category's issuer role. Cheap once done (remembered per process); returns grants made."""
        from materials_api.identity.models import ApiKey, User
        from materials_api.records.kinds import ROLE_CATEGORY

        writers = ("issuer", *ROLE_CATEGORY)
        with self.sessions() as s:
            rows = set(s.execute(select(ApiKey.organisation_id, ApiKey.role, ApiKey.scope).where(
                ApiKey.role.in_(writers), ApiKey.revoked_at.is_(None))).all())
            rows |= set(s.execute(select(User.organisation_id, User.role, User.scope).where(
                User.role.in_(writers), User.disabled_at.is_(None))).all())
        made = 0
        for organisation_id, role, scope in sorted(rows, key=lambda r: (r[0], r[1], r[2] or "")):
            category = scope if role == "issuer" else ROLE_CATEGORY[role]
            if not category:
                continue
            before = len(self._granted)
            self.issuer_account(organisation_id, category)
            made += len(self._granted) - before
        return made

    def issuer_roles(self, organisation_id: int) -> list[str]:
        """The chain roles an organisation's account holds (one per category it issued in):
        what a rotation grants the new key and retires from the old."""
        with self.sessions() as s:
            row = s.get(IssuerAccount, organisation_id)
        return [f"issuer:{c}" for c in (row.categories.split(",") if row else []) if c]

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
        row = dict(enterprise_id=enterprise.id, kind=kind.code, category=kind.category, number=number,
                   title=(title or kind.name)[:200], data=json.dumps(data, sort_keys=True, ensure_ascii=False),
                   valid_from=valid_from, valid_until=valid_until, status="valid",
                   issuer_organisation_id=principal.organisation_id, issuer_key_id=principal.key_id,
                   content_sha256=content_hash(enterprise.uscc, kind.code, number, data, valid_from, valid_until),
                   chain_state=ChainState.PENDING.value)
        seal([row], [enterprise.uscc], self.chain.tree_hash)
        with self.sessions.begin() as s:
            record_id = s.execute(insert(Record).returning(Record.id), [row]).scalar_one()
        self._witness(record_id)
        return self.get(record_id)

    def set_status(self, record: Record, status: str, reason: str | None, principal: Principal) -> Record:
        if status not in STATUSES:
            raise RecordError(Kind.INVALID, "unknown_status", f"status is one of {', '.join(STATUSES)}")
        if category_of(principal) != record.category:
            raise RecordError(Kind.FORBIDDEN, "category_forbidden",
                              f"{principal.organisation} may not change {record.category} records")
        if record.issuer_organisation_id != principal.organisation_id:  # and it signs with its own account
            raise RecordError(Kind.FORBIDDEN, "not_issuing_organisation",
                              f"record {record.id} was issued by another organisation; only it may change it")
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
        # On a request: the organisation's own account signs; the governor's key is never used
        # here (a new organisation's grant waits for the background worker).
        try:
            self.reconcile([record_id], grant=False)
        except GrantPending as exc:
            log.info("record %d: witnessed once the worker grants the role: %s", record_id, exc)
        except ChainError as exc:
            log.warning("record %d: chain write deferred: %s", record_id, exc)

    def reconcile(self, ids: list[int] | None = None, *, grant: bool = True) -> int:
        """Make the chain witness each record as the database holds it; idempotent. Batches not
        yet issued go first (up to ROOTS_PER_TX of one issuer and category a transaction, several
        in flight), then the status changes the chain still lacks. At most RECONCILE_CHUNK records
        a call (the loop calls again)."""
        with self._engine.connect() as s:  # Core: thousands of rows, no ORM objects
            q = select(*_WITNESS_COLUMNS).where(Record.chain_state.in_(UNWITNESSED))
            if ids is not None:
                q = q.where(Record.id.in_(ids))
            rows = list(s.execute(q.order_by(Record.id).limit(RECONCILE_CHUNK)))
        if not rows:
            return 0
        ledger = self.chain.ledger
        by_root: dict[bytes, list[Row]] = {}
        for r in rows:
            by_root.setdefault(r.root, []).append(r)
        onchain: dict[int, RecordStatus] = {}
        unissued: list[bytes] = []
        resealed: set[int] = set()
        for root, members in by_root.items():
            # A batch is issued whole in one transaction: its first record says for all of them.
            first = ledger.record_of(root, members[0].leaf_index).status
            if first == RecordStatus.NONE:
                unissued.append(root)
            elif any(m.block_number is None for m in members) and self._squatted(members):
                resealed.update(m.id for m in members)  # another account anchored it: sealed anew, next pass
            else:
                onchain[members[0].id] = first
                for m in members[1:]:
                    onchain[m.id] = ledger.record_of(root, m.leaf_index).status
                if any(m.block_number is None for m in members):  # issued, its receipt lost (a crash)
                    self._note_anchoring(root)
        rows = [r for r in rows if r.id not in resealed]
        batches: dict[bytes, list[Row]] = {}
        if unissued:
            with self._engine.connect() as s:  # every record of each batch, also those past this chunk
                for r in s.execute(select(*_WITNESS_COLUMNS).where(Record.root.in_(unissued))
                                   .order_by(Record.leaf_index)):
                    batches.setdefault(r.root, []).append(r)
                    onchain[r.id] = RecordStatus.NONE
            seen = {r.id for r in rows}
            rows += [r for members in batches.values() for r in members if r.id not in seen]
        accounts = {(r.issuer_organisation_id, r.category): None for r in rows}
        for org, category in accounts:
            accounts[(org, category)] = self.issuer_account(org, category, grant=grant)
        account = lambda r: accounts[(r.issuer_organisation_id, r.category)]  # noqa: E731
        # One transaction for several batches of one issuer and category: on a node that pays
        # for every block (anvil's automining recomputes its state each block), the import's
        # rate follows the number of transactions, not of records.
        by_writer: dict[tuple[int, str], list[list[Row]]] = {}
        marked: set[int] = set()  # witnessed from their issuing receipt already
        for members in batches.values():
            by_writer.setdefault((members[0].issuer_organisation_id, members[0].category), []).append(members)
        self.outbox.deliver("records", None, [
            Delivery([m.id for members in group for m in members],
                     partial(ledger.send_issue_records, account(group[0][0]), group[0][0].category,
                             [members[0].root for members in group], [len(members) for members in group]),
                     partial(self._issued, group, onchain, marked), already=("RootAlreadyAnchored",))
            for groups in by_writer.values()
            for group in (groups[k:k + ROOTS_PER_TX] for k in range(0, len(groups), ROOTS_PER_TX))])
        # A batch sent with another that the chain already held was refused with it: it stays
        # pending for the next pass, which sends it again.
        rows = [r for r in rows if onchain[r.id] != RecordStatus.NONE]
        changes = [r for r in rows if onchain[r.id] != TO_CHAIN[r.status]]
        # After an upgrade a record's earlier bundle names the earlier deployment: its status
        # changes go there too (first, so a failure leaves the change pending for the next pass).
        for earlier in self.chain.earlier_ledgers() if changes else ():
            for r in changes:
                held = earlier.record_of(r.root, r.leaf_index).status
                if held not in (RecordStatus.NONE, TO_CHAIN[r.status]):
                    try:
                        self.chain.client.wait(earlier.send_set_record_status(account(r), r.root, r.leaf_index,
                                                                              TO_CHAIN[r.status], r.status))
                    except TransactionReverted as exc:
                        log.warning("record %d: status on earlier deployment %s refused: %s", r.id,
                                    earlier.deployment.address, exc)
        # A record already at the status sent (another instance, or an import's own witnessing,
        # sent the same change first) reverts InvalidRecordStatus: delivered.
        self.outbox.deliver("record-status", None, [
            Delivery([r.id], partial(ledger.send_set_record_status, account(r), r.root, r.leaf_index,
                                     TO_CHAIN[r.status], r.status), lambda _receipt: 1,
                     already=("InvalidRecordStatus",))
            for r in changes])
        # Only as the row still is: a status changed meanwhile stays pending for the next pass.
        # Rows already marked from their receipt (issued valid, `_issued`) are not written again.
        by_status: dict[str, list[int]] = {}
        for r in rows:
            if r.id not in marked:
                by_status.setdefault(r.status, []).append(r.id)
        with self._engine.begin() as c:
            for status, record_ids in by_status.items():
                for k in range(0, len(record_ids), LOOKUP_CHUNK):
                    c.execute(update(_R).where(_R.c.id.in_(record_ids[k:k + LOOKUP_CHUNK]), _R.c.status == status)
                              .values(chain_state=ChainState.CONFIRMED.value, chain_status=status))
        return len(rows)

    def _squatted(self, members: list[Row]) -> bool:
        """Whether another account anchored this batch's root first (notaries and issuers share
        one root namespace): then its records are sealed anew (fresh salts, a new root) and sent
        in the next pass; the squatter's anchor witnesses nothing of ours."""
        onchain = self.chain.ledger.anchor_of(members[0].root)
        if onchain is None:
            return False
        org = members[0].issuer_organisation_id
        ours = {r.address.lower() for r in self.chain.keys.rows(f"org-{org}")}
        if onchain.anchorer.lower() in ours:
            return False
        log.error("records batch %s: its root was anchored by %s, not by organisation %d's account (squatted); "
                  "sealed anew", members[0].root.hex(), onchain.anchorer, org)
        reseal(self.sessions, members[0].root, self.chain.tree_hash)
        return True

    def _note_anchoring(self, root: bytes) -> None:
        """Where batch `root` was issued, read from the chain's logs, for a batch whose receipt
        this service never saw (sent before a crash, or by another instance)."""
        found = self.chain.ledger.anchoring(root)
        if found is not None:
            with self._engine.begin() as c:
                c.execute(update(_R).where(_R.c.root == root, _R.c.block_number.is_(None))
                          .values(block_number=found[0], tx_hash=found[1]))

    def _issued(self, group: list[list[Row]], onchain: dict, marked: set[int], receipt: Receipt | None) -> int:
        if receipt is None:  # issued meanwhile by someone else (all, or some): read what the chain holds
            for members in group:
                if self._squatted(members):
                    continue
                first = self.chain.ledger.record_of(members[0].root, members[0].leaf_index).status
                for m in members:
                    onchain[m.id] = first if first == RecordStatus.NONE else \
                        self.chain.ledger.record_of(m.root, m.leaf_index).status
                if first != RecordStatus.NONE:
                    self._note_anchoring(members[0].root)
            return 0
        ids = [m.id for members in group for m in members]
        for record_id in ids:
            onchain[record_id] = RecordStatus.VALID  # what issuing sets
        # One write a record: where it was issued and, for those still valid in the database
        # (nearly all), witnessed. The others get their status sent next.
        with self._engine.begin() as c:
            for k in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[k:k + LOOKUP_CHUNK]
                c.execute(update(_R).where(_R.c.id.in_(chunk), _R.c.status != "valid")
                          .values(tx_hash=receipt.tx_hash, block_number=receipt.block_number))
                c.execute(update(_R).where(_R.c.id.in_(chunk), _R.c.status == "valid")
                          .values(tx_hash=receipt.tx_hash, block_number=receipt.block_number,
                                  chain_state=ChainState.CONFIRMED.value, chain_status="valid"))
        marked.update(m.id for members in group for m in members if m.status == "valid")
        return len(ids)

    def backlog(self) -> tuple[int, float]:
        """Records (or status changes) the chain does not witness yet, and the oldest's wait."""
        return backlog(self.sessions, Record.chain_state.in_(UNWITNESSED), Record.updated_at)

    def requeue_lost(self) -> int:
        """At start: records the database holds as witnessed but the chain does not know (a reset
        chain, a node that lost its latest state) go back to pending, to be issued again."""
        with self.sessions() as s:
            roots = list(s.scalars(select(Record.root).where(Record.chain_state == ChainState.CONFIRMED.value)
                                   .distinct()))
        # A batch is issued whole: one look at the chain per batch.
        gone = [root for root in roots if self.chain.ledger.anchor_of(root) is None]
        lost: list[int] = []
        for k in range(0, len(gone), 1000):
            with self.sessions() as s:
                lost += s.scalars(select(Record.id).where(Record.root.in_(gone[k:k + 1000]))).all()
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

    def for_enterprise(self, enterprise_id: int) -> list[Row]:
        """The enterprise's records in force or not (not those superseded by an amendment), as
        read-only rows: every scan that is not answered from the cache reads them."""
        with self._engine.connect() as c:
            return list(c.execute(_CURRENT_OF_ENTERPRISE, {"enterprise_id": enterprise_id}))

    def bundle(self, record: Record, uscc: str) -> ProofBundle:
        if record.chain_state == ChainState.PENDING.value and record.block_number is None:
            raise RecordError(Kind.CONFLICT, "not_anchored", f"record {record.id} is not on chain yet")
        return ProofBundle(
            leaf=LeafInput(bytes.fromhex(record.content_sha256), chain_key(uscc), record.kind, 1,
                           record.valid_until or 0, record.leaf_index, record.salt),
            proof=self._proof(record), root=record.root,
            anchor=Anchor(self.chain.client.chain_id, self.chain.deployment.address, record.tx_hash or "",
                          record.block_number or 0), category=record.category, digest=self.chain.tree_hash)

    def _proof(self, record: Record) -> list[bytes]:
        """A record's Merkle path, from its batch's leaves (kept, in order, with their records):
        not stored per record, which would double what an import writes for millions of rows a
        bundle is asked of now and then."""
        with self._engine.connect() as c:
            leaves = list(c.execute(select(_R.c.leaf).where(_R.c.root == record.root)
                                    .order_by(_R.c.leaf_index)).scalars())
        tree = MerkleTree(leaves, self.chain.tree_hash)
        if tree.root != record.root or len(leaves) <= record.leaf_index:
            raise RecordError(Kind.CONFLICT, "batch_incomplete",
                              f"record {record.id}: the leaves held for its batch do not make its root")
        return tree.proof(record.leaf_index)

    # --- verification -------------------------------------------------------------------------------
    def verify(self, record: Record | Row, uscc: str, now: int | None = None) -> Verdict:
        """integrity (the stored record still hashes to its leaf), anchor (its root is on
        chain), issuer (the anchorer holds this category's issuer role), status (in force:
        not suspended, revoked, removed or expired, in the register and on chain)."""
        now = int(self.clock.time()) if now is None else now
        return run(RECORD_STEPS, _RecordCheck(self, record, uscc, now))

    def verify_all(self, records: list[Row], uscc: str) -> list[Verdict]:
        """`verify` for each of an enterprise's records, their statuses on chain read at once."""
        now = int(self.clock.time())
        on_chain = self.mirror.record_statuses([(r.root, r.leaf_index) for r in records])
        return [run(RECORD_STEPS, _RecordCheck(self, r, uscc, now, on_chain=on_chain.get((r.root, r.leaf_index), None)))
                for r in records]


@dataclass
class _RecordCheck:
    service: RecordService
    record: Record | Row
    uscc: str
    now: int
    anchorer: str | None = None  # as the mirror saw it anchor the record's batch
    anchor_block: int = 0
    own: bool = False  # witnessed by this service, not yet seen by the mirror
    on_chain: int | None | type(...) = ...  # the status last set on chain, when already read


def _record_integrity(c: _RecordCheck) -> Check:
    r = c.record
    digest = content_hash(c.uscc, r.kind, r.number, json.loads(r.data), r.valid_from, r.valid_until)
    leaf = LeafInput(bytes.fromhex(digest), chain_key(c.uscc), r.kind, 1, r.valid_until or 0, r.leaf_index,
                     r.salt).hash(c.service.chain.tree_hash)
    if leaf == r.leaf:
        return Check(CheckName.INTEGRITY, Status.VALID, Reason.CONTENT_MATCHES, "the record is as issued")
    return Check(CheckName.INTEGRITY, Status.INVALID, Reason.CONTENT_ALTERED, "the record differs from what was issued")


def _record_anchor(c: _RecordCheck) -> Check:
    r = c.record
    anchor = c.service.mirror.anchor(r.root)
    if anchor is not None:
        c.anchorer, c.anchor_block = anchor.anchorer, anchor.block_number
        return Check(CheckName.ANCHOR, Status.VALID, Reason.ROOT_ANCHORED,
                     f"anchored in block {anchor.block_number} by {anchor.anchorer}")
    if r.chain_state != ChainState.CONFIRMED.value:
        return Check(CheckName.ANCHOR, Status.ERROR, Reason.NOT_ON_CHAIN_YET, "the chain does not (yet) hold this record")
    head = c.service.mirror.head()
    if head is not None and head.block_number >= (r.block_number or 0):
        return Check(CheckName.ANCHOR, Status.INVALID, Reason.ROOT_NOT_ANCHORED,
                     f"the chain (block {head.block_number}) does not hold this record")
    c.own = True  # confirmed by this service's own receipt; the mirror has not read that block yet
    return Check(CheckName.ANCHOR, Status.VALID, Reason.ROOT_ANCHORED,
                 f"anchored in block {r.block_number} (this service's receipt)")


def _record_liveness(c: _RecordCheck) -> Check:
    head, max_age = c.service.mirror.head(), c.service.settings.mirror_max_age
    age = c.now - head.synced_at if head is not None and head.synced_at else None
    if age is None or age > max_age:
        seen = f"{age:.0f} s ago" if age is not None else "never"
        return Check(CheckName.LIVENESS, Status.ERROR, Reason.MIRROR_BEHIND,
                     f"the chain mirror was last at the node's head {seen} (allowed: {max_age:g} s)")
    return Check(CheckName.LIVENESS, Status.VALID, Reason.MIRROR_CURRENT,
                 f"checked against block {head.block_number}, the node's head {age:.0f} s ago")


def _record_issuer(c: _RecordCheck) -> Check:
    category = c.record.category
    if c.own:  # this service's own receipt; the mirror has not read that block yet
        return Check(CheckName.ISSUER, Status.VALID, Reason.CATEGORY_ISSUER, f"issued by this service's {category} issuer")
    term = c.service.mirror.role_term(issuer_role(category), c.anchorer)
    return writer_check(f"{category} issuer", c.anchor_block, held=term.held_at(c.anchor_block),
                        retired=term.retired_block != 0,
                        compromised_from=term.compromised_from_block if term.compromised else None,
                        held_reason=Reason.CATEGORY_ISSUER, not_held_reason=Reason.NOT_CATEGORY_ISSUER)


_NOT_IN_FORCE = {"suspended": (Reason.RECORD_SUSPENDED, "暂停"), "revoked": (Reason.RECORD_REVOKED, "撤销/吊销"),
                 "removed": (Reason.RECORD_REMOVED, "已移出")}


def _record_status(c: _RecordCheck) -> Check:
    # The database is the record: a change there shows in the very next scan, before the chain
    # has witnessed it, and even while the chain is down; the chain can only make it stricter.
    r = c.record
    if r.status != "valid":
        reason, label = _NOT_IN_FORCE[r.status]
        return Check(CheckName.STATUS, Status.INVALID, reason, f"{label}: {r.status_reason or ''}")
    if r.valid_until and r.valid_until < c.now:
        return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_EXPIRED, "the validity window has ended")
    if r.valid_from and r.valid_from > c.now:
        return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_NOT_YET_VALID, "the validity window has not begun")
    on_chain = c.service.mirror.record_status(r.root, r.leaf_index) if c.on_chain is ... else c.on_chain
    if on_chain in (RecordStatus.SUSPENDED, RecordStatus.REVOKED):
        return Check(CheckName.STATUS, Status.INVALID, Reason.RECORD_REVOKED_ON_CHAIN, "the chain holds it as not in force")
    return Check(CheckName.STATUS, Status.VALID, Reason.IN_FORCE, "in force")


RECORD_STEPS: tuple[Step[_RecordCheck], ...] = (
    Step(CheckName.INTEGRITY, _record_integrity),
    Step(CheckName.ANCHOR, _record_anchor),
    Step(CheckName.ISSUER, _record_issuer, applies=lambda c: c.anchorer is not None or c.own),
    Step(CheckName.LIVENESS, _record_liveness, applies=lambda c: c.service.settings.mirror_max_age > 0),
    Step(CheckName.STATUS, _record_status),  # the database decides first, then the mirror
)
