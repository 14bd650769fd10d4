"""The chain mirror: one follower reads the contract's events block by block into the database
(`chain_events`), so that answering a scan needs no JSON-RPC call, and verdicts say which block
they were checked against.

The follower (`ChainMirror.step`, run under the background lease) reads `eth_getLogs` over block
ranges (catching up from the deployment block in ranges of `batch_blocks`), keeps the hash of
every block it reached (the newest `keep_blocks` of them) and, before reading on, checks that the
node still has the block it stopped at: when a reorg replaced it, it walks back through the
kept hashes to the last block both agree on, deletes every event above it and reads again.
Events are keyed by (block, log index, leaf), so reading a range twice changes nothing.

`MirrorView` answers from the tables: a batch's anchor, a leaf's revocation, a record's and an
enterprise's status on chain, whether an account held a role (at a block), and the mirror's own
head with the time it was last seen to be at the node's head (`synced_at`): a verdict checked
against a mirror that has not caught up within the allowed age is an ERROR `mirror_behind`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import and_, bindparam, delete, func, insert, select

from chain.client import ChainClient
from chain.ledger import RoleTerm
from materials_api.platform.cache import TtlCache
from materials_api.platform.models import ChainEvent, ChainMirrorBlock, ChainMirrorMark

log = logging.getLogger("qiyema.mirror")

# A revocation by proof (`LeafRevoked`, kept by leaf since contract 1.6.0) is not mirrored: the
# service never sends one, and verifiers read it from the chain with the leaf (`leafStatus`).
_SIGNATURES = {
    "BatchAnchored(bytes32,address,uint32)": "anchored",
    "LeavesRevoked(bytes32,uint256[],bytes32)": "leaves_revoked",
    "RecordStatusChanged(bytes32,uint256,bytes32,uint8,uint8,bytes32)": "record_status",
    "EnterpriseRegistered(bytes32,address)": "enterprise",
    "EnterpriseStatusChanged(bytes32,uint8,uint8,bytes32)": "enterprise_status",
    "CodeSignerRotated(bytes32,address,address)": "code_signer",
    "RoleGranted(bytes32,address,address)": "role_granted",
    "RoleRevoked(bytes32,address,address)": "role_revoked",
    "RoleCompromised(bytes32,address,uint64,bytes32)": "role_compromised",
}
TOPICS = {"0x" + keccak(text=sig).hex(): kind for sig, kind in _SIGNATURES.items()}
ACTIVE = 1  # IEnterpriseRegistry.EnterpriseStatus.Active
_E, _B, _MARK = ChainEvent.__table__, ChainMirrorBlock.__table__, ChainMirrorMark.__table__
_RECORD_STATUSES = (select(_E.c.subject, _E.c.item, _E.c.value)
                    .where(_E.c.kind == "record_status", _E.c.subject.in_(bindparam("subjects", expanding=True)),
                           _E.c.item.in_(bindparam("items", expanding=True)))
                    .order_by(_E.c.block_number, _E.c.log_index))
STATUS_CHANGED = "status_changed"


def _hex(value) -> str:
    return "0x" + bytes(value).hex() if not isinstance(value, str) else value.lower()


def _topic_address(topic) -> str:
    return to_checksum_address(bytes(topic)[-20:] if not isinstance(topic, str) else "0x" + topic[-40:])


def decode_log(entry, timestamps: dict[int, int]) -> list[dict]:
    """The mirror rows of one log entry (none for an event the mirror does not keep)."""
    topics = [_hex(t) for t in entry["topics"]]
    kind = TOPICS.get(topics[0]) if topics else None
    if kind is None:
        return []
    data = bytes(entry["data"]) if not isinstance(entry["data"], str) else bytes.fromhex(entry["data"][2:])
    block, index = int(entry["blockNumber"]), int(entry["logIndex"])
    row = {"block_number": block, "log_index": index, "item": -1, "subject": topics[1], "account": None,
           "value": None, "at": None}
    if kind == "anchored":
        (count,) = abi_decode(["uint32"], data)
        return [{**row, "kind": kind, "account": _topic_address(topics[2]), "value": count, "at": timestamps[block]}]
    if kind == "leaves_revoked":
        indexes, _reason = abi_decode(["uint256[]", "bytes32"], data)
        return [{**row, "kind": "leaf_revoked", "item": int(i)} for i in indexes]
    if kind == "record_status":
        _previous, current, _reason = abi_decode(["uint8", "uint8", "bytes32"], data)
        return [{**row, "kind": kind, "item": int(topics[2], 16), "value": current}]
    if kind == "enterprise":
        return [{**row, "kind": kind, "account": _topic_address(topics[2]), "value": ACTIVE}]
    if kind == "enterprise_status":
        _previous, current, _reason = abi_decode(["uint8", "uint8", "bytes32"], data)
        return [{**row, "kind": kind, "value": current}]
    if kind == "code_signer":
        return [{**row, "kind": kind, "account": _topic_address(topics[3])}]
    if kind == "role_compromised":
        from_block, _reason = abi_decode(["uint64", "bytes32"], data)
        return [{**row, "kind": kind, "account": _topic_address(topics[2]), "value": from_block}]
    return [{**row, "kind": "role", "account": _topic_address(topics[2]), "value": int(kind == "role_granted")}]


@dataclass(frozen=True)
class MirrorHead:
    block_number: int
    block_hash: str
    block_timestamp: int
    synced_at: float  # when the follower last found itself at the node's head (unix seconds)


class ChainMirror:
    def __init__(self, sessions, client: ChainClient, contract: str, start_block: int, *,
                 confirmations: int = 1, batch_blocks: int = 2000, keep_blocks: int = 256):
        self.sessions = sessions
        self.client = client
        self.contract = to_checksum_address(contract)
        self.start_block = start_block
        self.confirmations = max(1, confirmations)
        self.batch_blocks = batch_blocks
        self.keep_blocks = keep_blocks
        self._contract_checked = False

    def step(self) -> int:
        """Read on from where the mirror stopped (after undoing a reorg below it), at most
        `batch_blocks` blocks; returns how many blocks were read (0: at the node's head, or the
        node changed its blocks while they were read: read again next time)."""
        self._ensure_contract()
        target = self.client.block_number() - (self.confirmations - 1)
        last = self._last()
        if last is not None:
            on_chain = self._block(last.number)
            if on_chain is None or _hex(on_chain["hash"]) != last.hash:
                self._undo_reorg()
                last = self._last()
        start = (last.number + 1) if last is not None else self.start_block
        if start > target:
            if last is not None:
                with self.sessions.begin() as s:
                    s.execute(_B.update().where(_B.c.number == last.number).values(read_at=time.time()))
            return 0
        end = min(target, start + self.batch_blocks - 1)
        logs = self.client.logs(self.contract, start, end)
        # Hashes of the newest blocks read (to find a fork later), times of blocks with anchors.
        wanted = set(range(max(start, end - self.keep_blocks + 1), end + 1))
        wanted |= {int(e["blockNumber"]) for e in logs if _hex(e["topics"][0]) in _ANCHOR_TOPICS}
        blocks = {}
        for n in sorted(wanted):
            blocks[n] = self._block(n)
            if blocks[n] is None:
                return 0  # the node just lost a block it had said it has: a reorg; next step
        for e in logs:  # a log from a block the node no longer has: a reorg while reading
            b = blocks.get(int(e["blockNumber"]))
            if b is not None and _hex(b["hash"]) != _hex(e["blockHash"]):
                return 0
        first = blocks.get(start)
        if last is not None and first is not None and _hex(first["parentHash"]) != last.hash:
            return 0  # the node forked at the mirror's head between two reads: undone next step
        rows = [row for e in logs for row in decode_log(e, {n: int(b["timestamp"]) for n, b in blocks.items()})]
        now = time.time() if end == target else 0.0  # "synced" only once at the node's head
        with self.sessions.begin() as s:
            if rows:
                s.execute(insert(_E), rows)
            changed = [r["block_number"] for r in rows if r["kind"] != "anchored"]
            if changed:
                _move_mark(s, max(changed))
            s.execute(insert(_B), [{"number": n, "hash": _hex(b["hash"]), "timestamp": int(b["timestamp"]),
                                    "read_at": now} for n, b in blocks.items() if n > end - self.keep_blocks])
            s.execute(delete(_B).where(_B.c.number <= end - self.keep_blocks))
        return end - start + 1

    def follow(self, budget: float = 5.0) -> int:
        """Steps until the mirror is at the node's head or `budget` seconds have passed (the
        background loop's step: catching up from far behind does not wait between ranges)."""
        deadline, total = time.monotonic() + budget, 0
        while time.monotonic() < deadline:
            read = self.step()
            total += read
            if not read:
                break
        return total

    def _block(self, number: int):
        """The node's block `number`, or None when it has none (a shorter chain: reset, restored)."""
        return self.client.block(number)

    def _ensure_contract(self) -> None:
        """The tables mirror this deployment's contract; another one's (a new deployment on a
        reset chain) are dropped once, and the mirror reads again from this one's block."""
        if self._contract_checked:
            return
        mark = f"contract:{self.contract.lower()}"
        with self.sessions.begin() as s:
            known = s.execute(select(_MARK.c.name).where(_MARK.c.name.like("contract:%"))).scalars().all()
            if known != [mark]:
                if known:
                    log.warning("the chain mirror followed %s; it now follows %s from block %s",
                                ", ".join(k.removeprefix("contract:") for k in known), self.contract, self.start_block)
                s.execute(delete(_E))
                s.execute(delete(_B))
                s.execute(delete(_MARK).where(_MARK.c.name.like("contract:%")))
                s.execute(insert(_MARK).values(name=mark, block_number=self.start_block, changes=0))
                _move_mark(s, self.start_block)
        self._contract_checked = True

    def _last(self):
        with self.sessions() as s:
            return s.execute(select(_B).order_by(_B.c.number.desc()).limit(1)).first()

    def _undo_reorg(self) -> None:
        """Walk back to the newest kept block the node still has; drop everything above it."""
        with self.sessions() as s:
            kept = s.execute(select(_B.c.number, _B.c.hash).order_by(_B.c.number.desc())).all()
        common = None
        for number, hash_ in kept:
            block = self._block(number)
            if block is not None and _hex(block["hash"]) == hash_:
                common = number
                break
        # No kept block in common: the fork is deeper than the kept hashes: read from the start.
        floor = common if common is not None else self.start_block - 1
        with self.sessions.begin() as s:
            dropped = s.execute(delete(_E).where(_E.c.block_number > floor)).rowcount
            s.execute(delete(_B).where(_B.c.number > floor))
            _move_mark(s, floor)
        log.warning("chain reorg: the mirror went back to block %s (%s events dropped) and reads on from there",
                    floor, dropped)


_ANCHOR_TOPICS = {t for t, k in TOPICS.items() if k == "anchored"}


def _move_mark(s, block: int) -> None:
    moved = s.execute(_MARK.update().where(_MARK.c.name == STATUS_CHANGED)
                      .values(block_number=block, changes=_MARK.c.changes + 1)).rowcount
    if not moved:
        s.execute(insert(_MARK).values(name=STATUS_CHANGED, block_number=block, changes=1))


@dataclass(frozen=True)
class MirroredAnchor:
    anchorer: str
    leaf_count: int
    anchored_at: int
    block_number: int


def _found(value) -> bool:
    return value is not None


def _granted(term: RoleTerm) -> bool:
    return term.granted_block != 0


class MirrorView:
    """Reads of the mirror: what the chain said, as of the mirror's head.

    With `cache_ttl` (the scan path), the facts every scan asks again and that thousands of
    records share — a batch's anchor, an issuer's role, the mirror's head — are kept that long in
    the process: positive answers only (a new anchor or grant shows at once), the head for a
    quarter of it. A record's own status is never kept: it is read for all of an enterprise's
    records in one query (`record_statuses`)."""

    def __init__(self, sessions, cache_ttl: float = 0.0):
        self.sessions = sessions
        self._engine = sessions.kw["bind"]  # Core statements built once: the scan path's reads
        self._anchors = TtlCache(cache_ttl, max_entries=100_000) if cache_ttl else None
        self._roles = TtlCache(cache_ttl, max_entries=10_000) if cache_ttl else None
        self._head = TtlCache(cache_ttl / 4, max_entries=1) if cache_ttl else None

    def head(self) -> MirrorHead | None:
        if self._head is None:
            return self._read_head()
        return self._head.get("head", self._read_head, keep=_found)

    def _read_head(self) -> MirrorHead | None:
        with self.sessions() as s:
            row = s.execute(select(_B).order_by(_B.c.number.desc()).limit(1)).first()
        return MirrorHead(row.number, row.hash, row.timestamp, row.read_at) if row else None

    def anchor(self, root: bytes) -> MirroredAnchor | None:
        if self._anchors is None:
            return self._read_anchor(root)
        return self._anchors.get(root, lambda: self._read_anchor(root), keep=_found)

    def _read_anchor(self, root: bytes) -> MirroredAnchor | None:
        with self.sessions() as s:
            row = s.execute(select(_E.c.account, _E.c.value, _E.c.at, _E.c.block_number).where(
                _E.c.kind == "anchored", _E.c.subject == _hex(root), _E.c.item == -1).limit(1)).first()
        return MirroredAnchor(row.account, row.value, row.at, row.block_number) if row else None

    def revoked(self, root: bytes, index: int) -> bool:
        with self.sessions() as s:
            return s.execute(select(_E.c.block_number).where(
                _E.c.kind == "leaf_revoked", _E.c.subject == _hex(root), _E.c.item == index).limit(1)).first() is not None

    def _latest(self, s, kinds: tuple[str, ...], subject: str, extra=None, item: int = -1):
        q = select(_E.c.kind, _E.c.account, _E.c.value, _E.c.block_number).where(
            _E.c.kind.in_(kinds), _E.c.subject == subject, _E.c.item == item)
        if extra is not None:
            q = q.where(extra)
        return s.execute(q.order_by(_E.c.block_number.desc(), _E.c.log_index.desc()).limit(1)).first()

    def record_statuses(self, places: list[tuple[bytes, int]]) -> dict[tuple[bytes, int], int]:
        """The status last set on chain of each record (root, index) that had one (one query)."""
        if not places:
            return {}
        wanted = {(_hex(root), index): (root, index) for root, index in places}
        out: dict[tuple[bytes, int], int] = {}
        with self._engine.connect() as c:
            for row in c.execute(_RECORD_STATUSES, {"subjects": list({subject for subject, _ in wanted}),
                                                    "items": list({index for _, index in wanted})}):
                place = wanted.get((row.subject, row.item))
                if place is not None:
                    out[place] = row.value  # in chain order: the last one stays
        return out

    def record_status(self, root: bytes, index: int) -> int | None:
        """Record `index` of batch `root`: its status as last changed on chain (None: never
        changed since issuance)."""
        with self.sessions() as s:
            row = self._latest(s, ("record_status",), _hex(root), item=index)
        return row.value if row else None

    def enterprise(self, uscc_key: bytes) -> tuple[int, str | None] | None:
        """(status, code signer) of a registered enterprise, or None."""
        subject = _hex(uscc_key)
        with self.sessions() as s:
            status = self._latest(s, ("enterprise", "enterprise_status"), subject)
            signer = self._latest(s, ("enterprise", "code_signer"), subject)
        if status is None:
            return None
        return status.value, signer.account if signer else None

    def role_term(self, role: bytes, account: str) -> RoleTerm:
        """`account`'s term in `role` as the chain's events tell it (the contract's `roleTerm`):
        kept `cache_ttl` on the scan path, like the anchors."""
        if self._roles is None:
            return self._read_term(role, account)
        return self._roles.get((role, account), lambda: self._read_term(role, account), keep=_granted)

    def _read_term(self, role: bytes, account: str) -> RoleTerm:
        with self.sessions() as s:
            rows = s.execute(select(_E.c.kind, _E.c.value, _E.c.block_number).where(
                _E.c.kind.in_(("role", "role_compromised")), _E.c.subject == _hex(role),
                _E.c.account == to_checksum_address(account)).order_by(_E.c.block_number, _E.c.log_index)).all()
        granted = retired = 0
        compromised_from = None
        for row in rows:
            if row.kind == "role_compromised":
                compromised_from = row.value if compromised_from is None else min(compromised_from, row.value)
            elif row.value and not granted:
                granted = row.block_number
            elif not row.value and granted and not retired:
                retired = row.block_number
        return RoleTerm(granted, retired, compromised_from or 0, compromised_from is not None)

    def has_role(self, role: bytes, account: str, at_block: int | None = None) -> bool:
        """Whether `account` held `role` (at the end of `at_block`, or now)."""
        return self._read_role(role, account, at_block)

    def _read_role(self, role: bytes, account: str, at_block: int | None) -> bool:
        extra = _E.c.account == to_checksum_address(account)
        if at_block is not None:
            extra = and_(extra, _E.c.block_number <= at_block)
        with self.sessions() as s:
            row = self._latest(s, ("role",), _hex(role), extra)
        return bool(row and row.value)

    def event_count(self) -> int:
        with self.sessions() as s:
            return s.execute(select(func.count()).select_from(_E)).scalar_one()
