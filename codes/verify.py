"""Verification of a scanned code: independent checks, each VALID / INVALID / ERROR / SKIPPED
with a reason code, combined into one verdict.

The checks ask a `TrustSource` for what they cannot see in the token itself: the key set, the
chain (role of the signer, enterprise's code signer), the register (enterprise status) and the
nonce ledger. The online source is the service; the offline source is a signed key set an
inspector's device cached, which answers only what it can and leaves the rest SKIPPED.
`ERROR` (a source could not answer) is never turned into INVALID or VALID.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from chain.verdict import Check, Status, combine

from .token import CodeFormatError, CodeToken, normalise_origin, parse, recover_signer


@dataclass
class Verdict:
    status: Status
    checks: list[Check]
    kind: str | None = None  # "static" | "dynamic"
    uscc: str | None = None
    signer: str | None = None
    expires_at: int | None = None
    scope: dict | None = None
    enterprise: dict | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        d["checks"] = [c.as_dict() for c in self.checks]
        return d


class SourceUnavailable(Exception):
    """A trust source could not answer (chain or database unreachable, time-out)."""


@dataclass(frozen=True)
class KeyInfo:
    kid: int
    address: str
    status: str  # "active" | "retired"


@dataclass
class EnterpriseInfo:
    uscc: str
    name: str
    status: str  # active | abnormal | revoked | deregistered


class TrustSource(Protocol):
    origin: str
    offline: bool

    def static_key(self, kid: int) -> KeyInfo | None: ...

    def signer_is_registrar(self, address: str) -> bool | None:
        """None when this source cannot tell (offline)."""

    def enterprise_signer(self, uscc: str) -> str | None | bool:
        """The enterprise's code signer on chain; False when this source cannot tell."""

    def enterprise(self, uscc: str) -> EnterpriseInfo | None | bool:
        """False when this source cannot tell."""

    def use_nonce(self, token: CodeToken, now: int) -> tuple[str, dict | None] | None:
        """'fresh' / 'replayed' / 'unknown' with the scope the nonce carries; None if offline."""


def verify(text: str, source: TrustSource, now: int | None = None) -> Verdict:
    now = int(time.time()) if now is None else now
    checks: list[Check] = []
    try:
        token = parse(text)
    except CodeFormatError as exc:
        checks.append(Check("format", Status.INVALID, exc.code, exc.message))
        return Verdict(Status.INVALID, checks)
    checks.append(Check("format", Status.VALID, "parsed", f"format version 1, {'static' if token.is_static else 'dynamic'}"))
    verdict = Verdict(Status.VALID, checks, kind="static" if token.is_static else "dynamic", uscc=token.uscc,
                      expires_at=token.expires_at)

    # Origin: a code copied onto another host is a phishing copy, whatever else it carries.
    if token.origin != normalise_origin(source.origin):
        checks.append(Check("origin", Status.INVALID, "foreign_origin",
                            f"the code points at {token.origin}, not at {normalise_origin(source.origin)}"))
        verdict.status = Status.INVALID
        return verdict
    checks.append(Check("origin", Status.VALID, "origin_matches", token.origin))

    try:
        signer = recover_signer(token)
    except CodeFormatError as exc:
        checks.append(Check("signature", Status.INVALID, exc.code, exc.message))
        verdict.status = Status.INVALID
        return verdict
    verdict.signer = signer

    if token.is_static:
        _static_checks(token, signer, source, checks)
    else:
        _dynamic_checks(token, signer, source, checks, now, verdict)
    _enterprise_check(token, source, checks, verdict)
    verdict.status = combine(checks)
    return verdict


def _static_checks(token: CodeToken, signer: str, source: TrustSource, checks: list[Check]) -> None:
    key = source.static_key(token.kid)
    if key is None:
        checks.append(Check("signature", Status.INVALID, "unknown_key", f"no registrar key with id {token.kid}"))
        return
    if key.address.lower() != signer.lower():
        checks.append(Check("signature", Status.INVALID, "bad_signature",
                            f"the signature is not by key {token.kid}: the code was altered or forged"))
        return
    checks.append(Check("signature", Status.VALID, "signed", f"signed by registrar key {token.kid} ({key.address})"))
    if key.status != "active":
        checks.append(Check("key", Status.INVALID, "key_rotated_out",
                            f"key {token.kid} was rotated out; the code must be re-issued"))
    else:
        checks.append(Check("key", Status.VALID, "key_active", f"key {token.kid} is current"))
    try:
        role = source.signer_is_registrar(signer)
    except SourceUnavailable as exc:
        checks.append(Check("issuer", Status.ERROR, "chain_unavailable", str(exc)))
        return
    if role is None:
        checks.append(Check("issuer", Status.SKIPPED, "offline",
                            "offline: the registrar role comes from the signed key set, not from the chain"))
    elif role:
        checks.append(Check("issuer", Status.VALID, "registrar_on_chain", "the signer holds the registrar role on chain"))
    else:
        checks.append(Check("issuer", Status.INVALID, "not_registrar", "the signer does not hold the registrar role on chain"))


def _dynamic_checks(token: CodeToken, signer: str, source: TrustSource, checks: list[Check], now: int,
                    verdict: Verdict) -> None:
    try:
        expected = source.enterprise_signer(token.uscc)
    except SourceUnavailable as exc:
        checks.append(Check("signature", Status.ERROR, "chain_unavailable", str(exc)))
    else:
        if expected is False:
            checks.append(Check("signature", Status.SKIPPED, "offline",
                                "offline: the enterprise's code signer is on chain only"))
        elif expected is None:
            checks.append(Check("signature", Status.INVALID, "no_code_signer", "the enterprise has no code-signing key"))
        elif expected.lower() != signer.lower():
            checks.append(Check("signature", Status.INVALID, "bad_signature",
                                "not signed by the enterprise's current code-signing key (forged, altered or rotated)"))
        else:
            checks.append(Check("signature", Status.VALID, "signed", f"signed by the enterprise's key {signer}"))
    if token.expires_at <= now:
        checks.append(Check("expiry", Status.INVALID, "expired", f"expired {now - token.expires_at} s ago"))
    elif token.issued_at > now + 60:
        checks.append(Check("expiry", Status.INVALID, "not_yet_valid", "issued in the future"))
    else:
        checks.append(Check("expiry", Status.VALID, "not_expired", f"valid for {token.expires_at - now} s more"))
    try:
        used = source.use_nonce(token, now)
    except SourceUnavailable as exc:
        checks.append(Check("replay", Status.ERROR, "database_unavailable", str(exc)))
        return
    if used is None:
        checks.append(Check("replay", Status.SKIPPED, "offline", "offline: single use cannot be checked"))
        return
    state, scope = used
    if state == "unknown":
        checks.append(Check("replay", Status.INVALID, "unknown_nonce", "this code was never issued here"))
    elif state == "replayed":
        checks.append(Check("replay", Status.INVALID, "replayed", "this single-use code was already used"))
    else:
        checks.append(Check("replay", Status.VALID, "fresh", "first use" if token.single_use else "reusable until expiry"))
        verdict.scope = scope


def _enterprise_check(token: CodeToken, source: TrustSource, checks: list[Check], verdict: Verdict) -> None:
    try:
        info = source.enterprise(token.uscc)
    except SourceUnavailable as exc:
        checks.append(Check("status", Status.ERROR, "database_unavailable", str(exc)))
        return
    if info is False:
        checks.append(Check("status", Status.SKIPPED, "offline", "offline: the enterprise's live status is not known"))
        return
    if info is None:
        checks.append(Check("status", Status.INVALID, "enterprise_unknown", f"{token.uscc} is not registered"))
        return
    verdict.enterprise = {"uscc": info.uscc, "name": info.name, "status": info.status}
    if info.status in ("revoked", "deregistered"):
        label = {"revoked": "吊销 (licence revoked)", "deregistered": "注销 (deregistered)"}[info.status]
        checks.append(Check("status", Status.INVALID, f"enterprise_{info.status}", f"the enterprise is {label}"))
    elif info.status == "abnormal":
        checks.append(Check("status", Status.VALID, "enterprise_abnormal",
                            "the enterprise exists but is listed as abnormal (经营异常)"))
    else:
        checks.append(Check("status", Status.VALID, "enterprise_active", "the enterprise is active (存续)"))


@dataclass
class KeySet:
    """Registrar keys for offline verification, signed by the governor. Frozen as version 1."""

    origin: str
    issued_at: int
    expires_at: int
    keys: list[KeyInfo] = field(default_factory=list)
    governor: str = ""
    signature: str = ""

    def canonical(self) -> bytes:
        import json

        body = {"version": 1, "origin": normalise_origin(self.origin), "issued_at": self.issued_at,
                "expires_at": self.expires_at, "governor": self.governor,
                "keys": [{"kid": k.kid, "address": k.address, "status": k.status} for k in
                         sorted(self.keys, key=lambda k: k.kid)]}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> bytes:
        from eth_utils import keccak

        return keccak(b"\x19Qiyema KeySet v1\n" + self.canonical())

    def to_json(self) -> dict:
        import json

        return {**json.loads(self.canonical()), "signature": self.signature}

    @classmethod
    def from_json(cls, data: dict) -> "KeySet":
        try:
            if data.get("version") != 1:
                raise ValueError("unknown key set version")
            return cls(origin=data["origin"], issued_at=int(data["issued_at"]), expires_at=int(data["expires_at"]),
                       keys=[KeyInfo(int(k["kid"]), k["address"], k["status"]) for k in data["keys"]],
                       governor=data["governor"], signature=data["signature"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CodeFormatError("keyset_malformed", f"the key set is malformed: {exc}") from None

    def sign(self, private_key: bytes) -> None:
        from eth_keys import keys

        self.signature = "0x" + keys.PrivateKey(private_key).sign_msg_hash(self.digest()).to_bytes().hex()

    def check(self, trusted_governor: str, now: int) -> None:
        """Raise CodeFormatError unless signed by `trusted_governor` and not expired."""
        from eth_keys import keys

        try:
            sig = keys.Signature(bytes.fromhex(self.signature.removeprefix("0x")))
            signer = sig.recover_public_key_from_msg_hash(self.digest()).to_checksum_address()
        except Exception:  # noqa: BLE001 - any malformed signature is a refusal
            raise CodeFormatError("keyset_signature", "the key set's signature is malformed") from None
        if signer.lower() != trusted_governor.lower() or signer.lower() != self.governor.lower():
            raise CodeFormatError("keyset_signature", "the key set is not signed by the trusted governor")
        if now > self.expires_at:
            raise CodeFormatError("keyset_expired", "the cached key set has expired; refresh it when online")


class OfflineSource:
    """What an inspector's device knows without a network: a verified key set."""

    offline = True

    def __init__(self, keyset: KeySet, trusted_governor: str, now: int | None = None):
        keyset.check(trusted_governor, int(time.time()) if now is None else now)
        self.origin = keyset.origin
        self._keys = {k.kid: k for k in keyset.keys}

    def static_key(self, kid: int) -> KeyInfo | None:
        return self._keys.get(kid)

    def signer_is_registrar(self, address: str) -> bool | None:
        return None

    def enterprise_signer(self, uscc: str):
        return False

    def enterprise(self, uscc: str):
        return False

    def use_nonce(self, token: CodeToken, now: int):
        return None
