"""Enterprise codes: static codes signed by registrar keys, dynamic codes (亮码) signed by each
enterprise's custodial key, the signed key set for offline checks, and the online trust source
that verification asks."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timezone
from functools import partial

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.client import Receipt
from chain.crypto_profile import Sm2Signer
from chain.keystore import WrappedKey
from chain.signers import Signer
from chain.verdict import Verdict
from codes import token as tokens
from codes.keyset import KeyInfo, KeySet
from codes.uscc import UsccError, chain_key, validate
from codes.verify import PROFILE_SCHEMES, verify
from materials_api.codes.models import CodeKey, DynamicCode, EnterpriseCodeSigner, StaticCodeIssue
from materials_api.codes.online_source import OnlineSource, scope_digest
from materials_api.platform.cache import TtlCache
from chain.clock import SYSTEM, Clock
from materials_api.platform.config import Settings
from materials_api.platform.errors import Kind
from materials_api.platform.keys import ENTERPRISE_WRAPPING
from materials_api.platform.models import ChainState
from materials_api.platform.outbox import Delivery, Outbox
from materials_api.platform.runtime import ChainContext
from materials_api.registry.models import Enterprise, EnterpriseStatus
from materials_api.registry.service import EnterpriseError

log = logging.getLogger("qiyema")

def _owner(uscc: str) -> bytes:
    return b"enterprise-code-signer:" + uscc.encode()


def _static_owner(kid: int) -> bytes:
    return b"static-code-signer:%d" % kid


def _wrapped(row: EnterpriseCodeSigner | CodeKey | None, scheme: str) -> WrappedKey | None:
    if row is None or row.wrapped_key is None or not row.wrapped_by:
        return None
    backend, _, wrapping = row.wrapped_by.partition(":")
    return WrappedKey(backend, wrapping, bytes(row.public_key), bytes(row.wrapped_key), scheme)


class CodeService:
    def __init__(self, sessions: sessionmaker, chain: ChainContext, settings: Settings, outbox: Outbox | None = None,
                 clock: Clock = SYSTEM):
        self.sessions = sessions
        self.clock = clock  # codes' life: issued, expired
        self._engine = sessions.kw["bind"]  # Core connections on the scan path (no ORM session a scan)
        self.chain = chain
        self.outbox = outbox or Outbox(sessions, chain.client)
        self.settings = settings
        self.origin = tokens.normalise_origin(settings.public_url)
        self.scheme = PROFILE_SCHEMES[settings.crypto_profile]  # secp256k1 (intl) or sm2 (gm)
        self._keyset: KeySet | None = None  # signed once per change (keyset())
        # The registrar role of a code signer, re-read from the chain every 10 s (a rotation
        # also clears it at once, below).
        self.roles = TtlCache(10.0, clock=clock)
        self._enterprise_ids = TtlCache(None, max_entries=200_000)  # USCC -> row id, for scans
        self._issued_pairs = TtlCache(None, max_entries=200_000)  # (enterprise id, kid) recorded

    # --- registrar keys for static codes ------------------------------------------------------
    def _static_signer(self, key: CodeKey) -> Signer | Sm2Signer:
        store = self.chain.keys.store
        if self.scheme == "sm2":
            wrapped = _wrapped(key, "sm2")
            if wrapped is None:  # the profile is fixed at init: a gm home never made another kind
                raise EnterpriseError(Kind.CONFLICT, "key_not_sm2", f"static-code key {key.kid} is not an SM2 key")
            return store.wrapped_signer(wrapped, _static_owner(key.kid))
        return store.load_or_create(f"code-signer-{key.kid}")

    def active_key(self) -> CodeKey:
        """The current static-code key, created (and given the registrar role on chain) if none."""
        with self.sessions() as s:
            key = s.scalar(select(CodeKey).where(CodeKey.status == "active").order_by(CodeKey.kid.desc()))
        if key is not None and self.scheme == "sm2" and not self._can_sign(key):
            # Custody moved (`keys migrate`): the key kept wrapped by the old one signs no more;
            # a routine rotation, so what it signed stays valid.
            log.warning("static-code key %d is wrapped by a custody no longer configured: rotating", key.kid)
            return self.rotate_static_key()
        return key or self.rotate_static_key()

    def _can_sign(self, key: CodeKey) -> bool:
        wrapped = _wrapped(key, "sm2")
        return wrapped is not None and self.chain.keys.store.can_unwrap(wrapped)

    def rotate_static_key(self) -> CodeKey:
        """A new static-code key signs from now on; the previous one is retired (routine: it
        loses its registrar role on chain, and every code it signed stays valid, with the
        warning `key_retired`)."""
        with self.sessions() as s:
            kid = (s.scalar(select(func.max(CodeKey.kid))) or 0) + 1
            old = list(s.scalars(select(CodeKey).where(CodeKey.status == "active")))
        if kid > tokens.KID_MAX:
            raise EnterpriseError(Kind.CONFLICT, "key_ids_exhausted", "all 1024 key ids are used")
        if self.scheme == "sm2":
            made = self.chain.keys.store.new_wrapped_key(ENTERPRISE_WRAPPING, _static_owner(kid), "sm2")
            row = CodeKey(kid=kid, address=made.address, status="active", public_key=made.public_key,
                          wrapped_key=made.blob, wrapped_by=made.wrapped_by)
        else:
            row = CodeKey(kid=kid, address=self.chain.keys.store.load_or_create(f"code-signer-{kid}").address,
                          status="active")
        # Written ahead: a start re-grants an active key's role if the grant below did not land.
        with self.sessions.begin() as s:
            s.add(row)
        ledger, governor = self.chain.ledger, self.chain.governor
        ledger.grant_role(governor, "REGISTRAR_ROLE", row.address)
        for previous in old:
            ledger.revoke_role(governor, "REGISTRAR_ROLE", previous.address)
            self.roles.forget(previous.address)
            with self.sessions.begin() as s:
                s.execute(update(CodeKey).where(CodeKey.id == previous.id).values(
                    status="retired", retired_at=datetime.now(timezone.utc)))
        return row

    def requeue_lost(self) -> int:
        """At start: a chain that no longer gives an active static-code key its registrar role
        was reset (or is another chain, after a restore), so it lacks every role and signer
        granted after it: the keys get their role again and the enterprises' dynamic-code
        signers go back to pending (each is sent again before its next code). Returns how many
        keys were granted again."""
        with self.sessions() as s:
            active = list(s.scalars(select(CodeKey).where(CodeKey.status == "active")))
        ledger = self.chain.ledger
        lost = [key for key in active if not ledger.has_role("REGISTRAR_ROLE", key.address)]
        for key in lost:
            log.warning("static-code key %d has no registrar role on chain: granting it again", key.kid)
            ledger.grant_role(self.chain.governor, "REGISTRAR_ROLE", key.address)
            self.roles.forget(key.address)
        if lost:
            with self.sessions.begin() as s:
                s.execute(update(EnterpriseCodeSigner).where(
                    EnterpriseCodeSigner.chain_state == ChainState.CONFIRMED.value).values(
                    chain_state=ChainState.PENDING.value))
        self._requeue_ended_keys()
        return len(lost)

    def _requeue_ended_keys(self) -> None:
        """Earlier keys as the database holds them, on a chain that lacks their history (reset,
        restored, or a declaration that did not land before a crash): a retired key gets its
        term (granted, then retired) so its codes keep verifying; a compromised one is declared."""
        with self.sessions() as s:
            ended = list(s.scalars(select(CodeKey).where(CodeKey.status.in_(("retired", "compromised")))))
        ledger, governor = self.chain.ledger, self.chain.governor
        for key in ended:
            term = ledger.role_term("REGISTRAR_ROLE", key.address)
            if term.granted_block == 0:
                log.warning("static-code key %d has no registrar term on chain: granting and retiring it", key.kid)
                ledger.grant_role(governor, "REGISTRAR_ROLE", key.address)
                term = ledger.role_term("REGISTRAR_ROLE", key.address)
            if key.status == "compromised" and not term.compromised:
                self._declare_compromised(key.address, "key-compromised")
            elif key.status == "retired" and term.held:
                ledger.revoke_role(governor, "REGISTRAR_ROLE", key.address)
            self.roles.forget(key.address)

    def static_code(self, uscc: str) -> tuple[str, Enterprise]:
        result = self.static_codes([uscc])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def static_codes(self, usccs: list[str]) -> list[tuple[str, Enterprise] | UsccError | EnterpriseError]:
        """The static code and enterprise of each USCC, in order, or why it has none (not a USCC,
        not registered, deregistered). Which key signed each code is written (one transaction
        for all) before any code is handed out; a city's million codes are printed in batches."""
        out: list = [None] * len(usccs)
        valid: dict[int, str] = {}
        for i, text in enumerate(usccs):
            try:
                valid[i] = validate(text)
            except UsccError as exc:
                out[i] = exc
        with self.sessions() as s:
            found = {e.uscc: e for e in s.scalars(select(Enterprise).where(Enterprise.uscc.in_(set(valid.values()))))}
        key = self.active_key() if valid else None
        signer = self._static_signer(key) if key else None
        issued: set[int] = set()
        for i, code in valid.items():
            enterprise = found.get(code)
            if enterprise is None:
                out[i] = EnterpriseError(Kind.NOT_FOUND, "enterprise_not_found", f"no enterprise with USCC {code}")
            elif enterprise.status == EnterpriseStatus.DEREGISTERED.value:
                out[i] = EnterpriseError(Kind.CONFLICT, "enterprise_deregistered",
                                         f"{code} is deregistered; it has no code")
            else:
                out[i] = (tokens.static_code(self.origin, code, key.kid, signer), enterprise)
                issued.add(enterprise.id)
        if issued:
            self._issued(issued, key.kid)
        return out

    def _issued(self, enterprise_ids: set[int], kid: int) -> None:
        """Remember which key signed these enterprises' codes (once per pair): who needs a new
        code if that key is ever declared compromised."""
        new = {e for e in enterprise_ids if self._issued_pairs.peek((e, kid)) is None}
        if not new:
            return
        with self.sessions.begin() as s:
            held = set(s.scalars(select(StaticCodeIssue.enterprise_id).where(
                StaticCodeIssue.kid == kid, StaticCodeIssue.enterprise_id.in_(new))))
            s.add_all(StaticCodeIssue(enterprise_id=e, kid=kid) for e in sorted(new - held))
        for e in new:
            self._issued_pairs.put((e, kid), True)

    def key(self, kid: int) -> CodeKey | None:
        with self.sessions() as s:
            return s.scalar(select(CodeKey).where(CodeKey.kid == kid))

    def compromise_static_key(self, kid: int, reason: str = "key-compromised") -> CodeKey:
        """Declare static-code key `kid` compromised: every code it signed verifies INVALID
        `key_compromised` from now on (a static code carries no time), on chain too (its
        registrar term is marked compromised from its grant). An active key is replaced by a
        new one first. Written ahead in the database; the chain declaration is re-sent at start
        if it did not land (`requeue_lost`). Idempotent."""
        key = self.key(kid)
        if key is None:
            raise EnterpriseError(Kind.NOT_FOUND, "unknown_key", f"no static-code key with id {kid}")
        if key.status == "active":
            self.rotate_static_key()
        with self.sessions.begin() as s:
            s.execute(update(CodeKey).where(CodeKey.kid == kid, CodeKey.status != "compromised").values(
                status="compromised", compromised_at=datetime.now(timezone.utc),
                retired_at=func.coalesce(CodeKey.retired_at, datetime.now(timezone.utc))))
        self._declare_compromised(key.address, reason)
        return self.key(kid)

    def _declare_compromised(self, address: str, reason: str) -> None:
        ledger = self.chain.ledger
        if not ledger.role_term("REGISTRAR_ROLE", address).compromised:
            ledger.declare_compromised(self.chain.governor, "REGISTRAR_ROLE", address, 0, reason)
        self.roles.forget(address)

    def affected_by(self, kid: int) -> list[Enterprise]:
        """Enterprises whose static code was signed by `kid` and that are still registered."""
        with self.sessions() as s:
            return list(s.scalars(select(Enterprise).join(StaticCodeIssue, StaticCodeIssue.enterprise_id == Enterprise.id)
                                  .where(StaticCodeIssue.kid == kid,
                                         Enterprise.status != EnterpriseStatus.DEREGISTERED.value)
                                  .order_by(Enterprise.uscc)))

    def needs_new_code(self, enterprise_id: int) -> bool:
        """Whether a code signed for this enterprise by a compromised key may still be on a
        wall (the portal then says 请更换企业码)."""
        with self.sessions() as s:
            return s.execute(select(StaticCodeIssue.kid).join(CodeKey, CodeKey.kid == StaticCodeIssue.kid).where(
                StaticCodeIssue.enterprise_id == enterprise_id, CodeKey.status == "compromised").limit(1)).first() is not None

    def keyset(self) -> KeySet:
        """The key set, signed by the governor once per change of the keys (or of the governor)
        and again when half its life has passed: an anonymous GET never makes the governor sign."""
        now = int(self.clock.time())
        with self.sessions() as s:
            rows = list(s.scalars(select(CodeKey).order_by(CodeKey.kid)))
        keys = [KeyInfo(r.kid, r.address, r.status, bytes(r.public_key or b"")) for r in rows]
        governor = self.chain.governor
        cached = self._keyset
        if (cached is not None and cached.keys == keys and cached.governor == governor.address
                and now < cached.issued_at + self.settings.keyset_ttl // 2):
            return cached
        ks = KeySet(origin=self.origin, issued_at=now, expires_at=now + self.settings.keyset_ttl,
                    keys=keys, governor=governor.address, profile=self.settings.crypto_profile)
        ks.sign(governor)
        self._keyset = ks
        return ks

    # --- enterprise keys for dynamic codes ----------------------------------------------------
    def enterprise_signer(self, enterprise: Enterprise, *, rotate: bool = False) -> Signer:
        """The enterprise's dynamic-code key, made in the key store and kept in the database only
        wrapped (it never leaves the store); a new one is written on chain first (write-ahead,
        then confirmed). A key from before wrapping (derived from one master secret), or wrapped
        by a custody no longer configured, is replaced: codes it signed (minutes of life) end."""
        store = self.chain.keys.store
        for _ in range(3):  # two first codes of one enterprise at once: one key wins, both use it
            with self.sessions() as s:
                row = s.get(EnterpriseCodeSigner, enterprise.id)
            key = _wrapped(row, self.scheme)
            if key is not None and not rotate and store.can_unwrap(key):
                break
            key = store.new_wrapped_key(ENTERPRISE_WRAPPING, _owner(enterprise.uscc), self.scheme)
            if self._replace_signer(enterprise.id, row, key):
                break
        else:  # pragma: no cover - three lost races in a row
            raise EnterpriseError(Kind.CONFLICT, "signer_busy", "the enterprise's key is being replaced: try again")
        signer = store.wrapped_signer(key, _owner(enterprise.uscc))
        with self.sessions() as s:
            row = s.get(EnterpriseCodeSigner, enterprise.id)
        if row.chain_state != ChainState.CONFIRMED.value:
            ledger = self.chain.ledger
            chain_id = chain_key(enterprise.uscc)
            confirm = partial(self._signer_confirmed, enterprise.id)
            if ledger.enterprise(chain_id).code_signer.lower() == key.address.lower():
                confirm(None)  # the chain has it already
            else:
                self.outbox.deliver("code-signer", None, [Delivery(
                    [enterprise.id], partial(ledger.send_rotate_code_signer, self.chain.registrar, chain_id,
                                             key.address), confirm)])
        return signer

    def _replace_signer(self, enterprise_id: int, row: EnterpriseCodeSigner | None, key: WrappedKey) -> bool:
        """Store `key` as the enterprise's next signer unless another request replaced the row
        first (compare-and-set on the version read): False then."""
        values = dict(address=key.address, public_key=key.public_key, wrapped_key=key.blob,
                      wrapped_by=key.wrapped_by, chain_state=ChainState.PENDING.value, tx_hash=None)
        try:
            with self.sessions.begin() as s:
                if row is None:
                    s.add(EnterpriseCodeSigner(enterprise_id=enterprise_id, key_version=1, **values))
                    return True
                return s.execute(update(EnterpriseCodeSigner).where(
                    EnterpriseCodeSigner.enterprise_id == enterprise_id,
                    EnterpriseCodeSigner.key_version == row.key_version).values(
                    key_version=row.key_version + 1, **values)).rowcount == 1
        except IntegrityError:
            return False

    def _signer_confirmed(self, enterprise_id: int, receipt: Receipt | None) -> int:
        with self.sessions.begin() as s:
            s.execute(update(EnterpriseCodeSigner).where(EnterpriseCodeSigner.enterprise_id == enterprise_id)
                      .values(chain_state=ChainState.CONFIRMED.value, tx_hash=receipt.tx_hash if receipt else None))
        return 1

    def issue_dynamic(self, uscc: str, *, ttl: int | None = None, single_use: bool = False,
                      scope: dict | None = None, actor_key_id: int | None = None) -> tuple[str, DynamicCode]:
        code = validate(uscc)
        with self.sessions() as s:
            enterprise = s.scalar(select(Enterprise).where(Enterprise.uscc == code))
        if enterprise is None:
            raise EnterpriseError(Kind.NOT_FOUND, "enterprise_not_found", f"no enterprise with USCC {code}")
        if enterprise.status in (EnterpriseStatus.DEREGISTERED.value, EnterpriseStatus.REVOKED.value):
            raise EnterpriseError(Kind.CONFLICT, f"enterprise_{enterprise.status}", f"{code} is {enterprise.status}")
        if enterprise.chain_state != ChainState.CONFIRMED.value and enterprise.chain_status is None:
            raise EnterpriseError(Kind.CONFLICT, "enterprise_not_on_chain", f"{code} is not yet registered on chain")
        signer = self.enterprise_signer(enterprise)
        now = int(self.clock.time())
        ttl = ttl or self.settings.dynamic_code_ttl
        nonce = secrets.token_bytes(12)
        digest = scope_digest(scope) if scope else None
        url = tokens.dynamic_code(self.origin, code, now, now + ttl, nonce, signer, single_use=single_use,
                                  scope_digest=digest)
        row = DynamicCode(nonce=nonce.hex(), enterprise_id=enterprise.id, issued_by_key_id=actor_key_id, issued_at=now,
                          expires_at=now + ttl, single_use=single_use,
                          scope=json.dumps(scope, sort_keys=True, ensure_ascii=False) if scope else None)
        with self.sessions.begin() as s:
            s.add(row)
        return url, row

    # --- verification ---------------------------------------------------------------------
    def static_enterprise_id(self, text: str) -> int | None:
        """The enterprise a well-formed static code names, or None (any other code)."""
        try:
            token = tokens.parse(text)
        except tokens.CodeFormatError:
            return None
        if not token.is_static:
            return None
        hit = self._enterprise_ids.peek(token.uscc)
        if hit is not None:
            return hit[1]
        with self._engine.connect() as c:
            found = c.execute(_ENTERPRISE_ID_BY_USCC, {"uscc": token.uscc}).scalar()
        if found is not None:  # a registered company keeps its row: kept, bounded by count
            self._enterprise_ids.put(token.uscc, found)
        return found

    def verify(self, text: str, *, consume: bool = True) -> Verdict:
        """`consume=False` (a page view: a chat app's link preview, a person opening the link)
        checks a single-use code without using it up; only a verifier's scan uses it."""
        return verify(text, OnlineSource(self, consume=consume), int(self.clock.time()))


_ENTERPRISE_ID_BY_USCC = select(Enterprise.__table__.c.id).where(Enterprise.__table__.c.uscc == bindparam("uscc"))
