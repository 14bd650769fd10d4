"""What a scan asks the service (`codes/verify.py`'s `TrustSource`), answered live: the key
table, the chain (registrar terms, enterprises' code signers) and the register, and the nonce
ledger of dynamic codes. Core statements: this runs for every verification."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update

from chain.errors import ChainError
from chain.verdict import Source, SourceUnavailable, chain_unavailable
from codes.keyset import KeyInfo
from codes.uscc import chain_key
from codes.verify import EnterpriseInfo
from materials_api.codes.models import CodeKey, DynamicCode, EnterpriseCodeSigner
from materials_api.registry.models import Enterprise

if TYPE_CHECKING:
    from materials_api.codes.service import CodeService

_ZERO = "0x" + "00" * 20


def scope_digest(scope: dict) -> bytes:
    canonical = json.dumps(scope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()[:16]


_K, _E = CodeKey.__table__, Enterprise.__table__
_S = EnterpriseCodeSigner.__table__
_KEY_BY_KID = select(_K.c.kid, _K.c.address, _K.c.status, _K.c.public_key).where(_K.c.kid == bindparam("kid"))
_SIGNER_KEY_BY_USCC = select(_S.c.public_key).join(_E, _E.c.id == _S.c.enterprise_id).where(_E.c.uscc == bindparam("uscc"))
_ENTERPRISE_BY_USCC = select(_E.c.uscc, _E.c.name, _E.c.status).where(_E.c.uscc == bindparam("uscc"))


class OnlineSource:
    """The service's own view: key table, chain and register, all live."""

    offline = False

    def __init__(self, service: CodeService, *, consume: bool = True):
        self.service = service
        self._engine = service.sessions.kw["bind"]  # Core connections: no ORM session a scan
        self.origin = service.origin
        self.profile = service.settings.crypto_profile
        self.consume = consume

    def static_key(self, kid: int) -> KeyInfo | None:
        # Core statements on the scan path: it runs for every verification.
        try:
            with self._engine.connect() as c:
                row = c.execute(_KEY_BY_KID, {"kid": kid}).first()
        except Exception as exc:  # noqa: BLE001 - database trouble is an ERROR, not INVALID
            raise SourceUnavailable(f"database: {type(exc).__name__}", Source.DATABASE) from None
        return KeyInfo(row.kid, row.address, row.status, bytes(row.public_key or b"")) if row else None

    def registrar_term(self, address: str) -> str | None:
        try:
            return self.service.roles.get(
                address, lambda: self.service.chain.ledger.role_term("REGISTRAR_ROLE", address).state)
        except ChainError as exc:
            raise chain_unavailable(exc) from None

    def enterprise_signer(self, uscc: str):
        try:
            signer = self.service.chain.ledger.enterprise(chain_key(uscc)).code_signer
        except ChainError as exc:
            raise chain_unavailable(exc) from None
        return None if signer == _ZERO else signer

    def enterprise_public_key(self, uscc: str) -> bytes | None:
        # The database's copy; the verifier checks it is the key whose id the chain holds.
        try:
            with self._engine.connect() as c:
                key = c.execute(_SIGNER_KEY_BY_USCC, {"uscc": uscc}).scalar()
        except Exception as exc:  # noqa: BLE001
            raise SourceUnavailable(f"database: {type(exc).__name__}", Source.DATABASE) from None
        return bytes(key) if key else None

    def enterprise(self, uscc: str):
        try:
            with self._engine.connect() as c:
                e = c.execute(_ENTERPRISE_BY_USCC, {"uscc": uscc}).first()
        except Exception as exc:  # noqa: BLE001
            raise SourceUnavailable(f"database: {type(exc).__name__}", Source.DATABASE) from None
        return EnterpriseInfo(e.uscc, e.name, e.status) if e else None

    def use_nonce(self, token, now: int):
        nonce = token.nonce.hex()
        try:
            with self.service.sessions.begin() as s:
                row = s.get(DynamicCode, nonce)
                if row is None or row.expires_at != token.expires_at or row.issued_at != token.issued_at:
                    return ("unknown", None)
                scope = json.loads(row.scope) if row.scope else None
                if scope and scope_digest(scope) != token.scope_digest:
                    return ("unknown", None)
                if row.single_use and not self.consume:
                    return ("replayed" if row.used_at is not None else "fresh", scope)
                if row.single_use:
                    # Atomic: of two simultaneous scans exactly one sees rowcount 1.
                    done = s.execute(update(DynamicCode).where(DynamicCode.nonce == nonce,
                                                               DynamicCode.used_at.is_(None))
                                     .values(used_at=now)).rowcount
                    if not done:
                        return ("replayed", scope)
                return ("fresh", scope)
        except Exception as exc:  # noqa: BLE001
            raise SourceUnavailable(f"database: {type(exc).__name__}", Source.DATABASE) from None
