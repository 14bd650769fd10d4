"""Verification of a scanned code: named, independent checks (chain/verdict.py's pipeline),
each VALID / INVALID / ERROR / SKIPPED with a reason, combined into one verdict.

The checks ask a `TrustSource` for what they cannot see in the token itself: the key set, the
chain (role of the signer, enterprise's code signer), the register (enterprise status) and the
nonce ledger. The online source is the service; the offline source is a signed key set an
inspector's device cached, which answers only what it can and leaves the rest SKIPPED. A source
that cannot answer raises `SourceUnavailable`; the pipeline turns that into ERROR, never into
INVALID or VALID.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from chain.crypto_profile import CryptoError, sm2_key_id
from chain.verdict import Check, CheckName, Reason, Source, SourceUnavailable, Status, Step, Verdict, combine, run

from .keyset import KeyInfo
from .token import VERSION, CodeFormatError, CodeToken, normalise_origin, parse, recover_signer, signed_by

__all__ = ["EnterpriseInfo", "SourceUnavailable", "Status", "TrustSource", "Verdict", "verify"]


PROFILE_SCHEMES = {"intl": "secp256k1", "gm": "sm2"}


@dataclass
class EnterpriseInfo:
    uscc: str
    name: str
    status: str  # active | abnormal | revoked | deregistered


class TrustSource(Protocol):
    origin: str
    offline: bool
    profile: str  # "intl" or "gm": the one scheme this deployment's codes are signed with

    def static_key(self, kid: int) -> KeyInfo | None: ...

    def registrar_term(self, address: str) -> str | None:
        """The signer's term in the registrar role on chain: "active", "retired", "compromised"
        or "never"; "keyset" offline, where the governor-signed key set that listed the key is
        the witness; None when this source cannot tell."""

    def enterprise_signer(self, uscc: str) -> str | None | bool:
        """The enterprise's code signer on chain; False when this source cannot tell."""

    def enterprise_public_key(self, uscc: str) -> bytes | None:
        """The public key of the enterprise's code signer as this source holds it (gm: SM2
        recovers no key); checked against the key id the chain holds before it is used."""

    def enterprise(self, uscc: str) -> EnterpriseInfo | None | bool:
        """False when this source cannot tell."""

    def use_nonce(self, token: CodeToken, now: int) -> tuple[str, dict | None] | None:
        """'fresh' / 'replayed' / 'unknown' with the scope the nonce carries; None if offline."""


FACTS = ("kind", "uscc", "signer", "expires_at", "scope", "enterprise", "genuine")  # reported beside the checks
# The code's genuineness, answered apart from the enterprise's standing (SPEC: two answers): the
# checks that say who made the code and that it is still the one they made.
GENUINE = frozenset({CheckName.FORMAT, CheckName.ORIGIN, CheckName.SIGNATURE, CheckName.KEY, CheckName.ISSUER,
                     CheckName.EXPIRY})


@dataclass
class _Scan:
    """One verification in progress: what the steps have learnt so far."""

    text: str
    source: TrustSource
    now: int
    facts: dict
    token: CodeToken | None = None
    signer: str = ""
    key: KeyInfo | None = None  # the static key, once the signature is shown to be by it


def _format(v: _Scan) -> Check:
    try:
        v.token = parse(v.text)
    except CodeFormatError as exc:
        return Check(CheckName.FORMAT, Status.INVALID, Reason(exc.code), exc.message)
    kind = "static" if v.token.is_static else "dynamic"
    v.facts.update(kind=kind, uscc=v.token.uscc, expires_at=v.token.expires_at)
    ours = PROFILE_SCHEMES[v.source.profile]
    if v.token.scheme != ours:
        # One deployment never mixes the two: a code signed the other way is not one of its own.
        return Check(CheckName.FORMAT, Status.INVALID, Reason.CODE_PROFILE,
                     f"the code is signed with {v.token.scheme}; this deployment signs with {ours}")
    return Check(CheckName.FORMAT, Status.VALID, Reason.PARSED, f"format version {v.token.version}, {kind}")


def _origin(v: _Scan) -> Check:
    # A code copied onto another host is a phishing copy, whatever else it carries.
    ours = normalise_origin(v.source.origin)
    if v.token.origin != ours:
        return Check(CheckName.ORIGIN, Status.INVALID, Reason.FOREIGN_ORIGIN,
                     f"the code points at {v.token.origin}, not at {ours}")
    return Check(CheckName.ORIGIN, Status.VALID, Reason.ORIGIN_MATCHES, v.token.origin)


def _recover(v: _Scan) -> Check | None:
    if v.token.version != VERSION:
        return None  # SM2 recovers no key: the next step checks the signature against the key named
    try:
        v.signer = recover_signer(v.token)
    except CodeFormatError as exc:
        return Check(CheckName.SIGNATURE, Status.INVALID, Reason(exc.code), exc.message)
    v.facts["signer"] = v.signer
    return None  # who signed is known; whether that signer counts is the next step's


def _signed_by(v: _Scan, address: str, public_key: bytes | None) -> bool:
    """Whether the token is signed by the key `address` names; under SM2, by `public_key` once
    it is shown to be that key (its key id), which makes the signer known."""
    if v.token.version == VERSION:
        return address.lower() == v.signer.lower()
    try:
        if public_key is None or sm2_key_id(public_key).lower() != address.lower():
            return False
    except CryptoError:
        return False
    if not signed_by(v.token, public_key):
        return False
    v.signer = address
    v.facts["signer"] = address
    return True


def _static_signature(v: _Scan) -> Check | None:
    key = v.source.static_key(v.token.kid)
    if key is None:
        return Check(CheckName.SIGNATURE, Status.INVALID, Reason.UNKNOWN_KEY, f"no registrar key with id {v.token.kid}")
    if not _signed_by(v, key.address, key.sm2_key()):
        return Check(CheckName.SIGNATURE, Status.INVALID, Reason.BAD_SIGNATURE,
                     f"the signature is not by key {v.token.kid}: the code was altered or forged")
    v.key = key
    return Check(CheckName.SIGNATURE, Status.VALID, Reason.SIGNED, f"signed by registrar key {v.token.kid} ({key.address})")


def _static_key(v: _Scan) -> Check | None:
    # A static code carries no time, so a compromised key's codes are all suspect; a key
    # retired in a routine rotation signed them in its term and they stay good on the wall.
    if v.key.status == "active":
        return Check(CheckName.KEY, Status.VALID, Reason.KEY_ACTIVE, f"key {v.token.kid} is current")
    if v.key.status == "retired":
        return Check(CheckName.KEY, Status.VALID, Reason.KEY_RETIRED,
                     f"key {v.token.kid} was retired since it signed; the code stays valid")
    return Check(CheckName.KEY, Status.INVALID, Reason.KEY_COMPROMISED,
                 f"key {v.token.kid} was declared compromised: the code must be replaced (请更换企业码)")


def _static_issuer(v: _Scan) -> Check | None:
    term = v.source.registrar_term(v.signer)
    if term == "keyset":
        return Check(CheckName.ISSUER, Status.VALID, Reason.REGISTRAR_IN_KEYSET,
                     "offline: the key is on the key set signed by the pinned governor")
    if term is None:
        return Check(CheckName.ISSUER, Status.SKIPPED, Reason.OFFLINE,
                     "offline: the registrar role comes from the signed key set, not from the chain")
    if term == "compromised":
        return Check(CheckName.ISSUER, Status.INVALID, Reason.KEY_COMPROMISED,
                     "the chain holds the signer's registrar key as compromised")
    if term in ("active", "retired"):
        return Check(CheckName.ISSUER, Status.VALID, Reason.REGISTRAR_ON_CHAIN,
                     "the signer holds the registrar role on chain" if term == "active"
                     else "the signer held the registrar role on chain (retired since)")
    return Check(CheckName.ISSUER, Status.INVALID, Reason.NOT_REGISTRAR,
                 "the signer never held the registrar role on chain")


def _dynamic_signature(v: _Scan) -> Check | None:
    expected = v.source.enterprise_signer(v.token.uscc)
    if expected is False:
        return Check(CheckName.SIGNATURE, Status.SKIPPED, Reason.OFFLINE,
                     "offline: the enterprise's code signer is on chain only")
    if expected is None:
        return Check(CheckName.SIGNATURE, Status.INVALID, Reason.NO_CODE_SIGNER, "the enterprise has no code-signing key")
    public_key = v.source.enterprise_public_key(v.token.uscc) if v.token.version != VERSION else None
    if not _signed_by(v, expected, public_key):
        return Check(CheckName.SIGNATURE, Status.INVALID, Reason.BAD_SIGNATURE,
                     "not signed by the enterprise's current code-signing key (forged, altered or rotated)")
    return Check(CheckName.SIGNATURE, Status.VALID, Reason.SIGNED, f"signed by the enterprise's key {v.signer}")


def _expiry(v: _Scan) -> Check | None:
    if v.token.expires_at <= v.now:
        return Check(CheckName.EXPIRY, Status.INVALID, Reason.EXPIRED, f"expired {v.now - v.token.expires_at} s ago")
    if v.token.issued_at > v.now + 60:
        return Check(CheckName.EXPIRY, Status.INVALID, Reason.NOT_YET_VALID, "issued in the future")
    return Check(CheckName.EXPIRY, Status.VALID, Reason.NOT_EXPIRED, f"valid for {v.token.expires_at - v.now} s more")


def _replay(v: _Scan) -> Check | None:
    used = v.source.use_nonce(v.token, v.now)
    if used is None:
        return Check(CheckName.REPLAY, Status.SKIPPED, Reason.OFFLINE, "offline: single use cannot be checked")
    state, scope = used
    if state == "unknown":
        return Check(CheckName.REPLAY, Status.INVALID, Reason.UNKNOWN_NONCE, "this code was never issued here")
    if state == "replayed":
        return Check(CheckName.REPLAY, Status.INVALID, Reason.REPLAYED, "this single-use code was already used")
    v.facts["scope"] = scope
    return Check(CheckName.REPLAY, Status.VALID, Reason.FRESH,
                 "first use" if v.token.single_use else "reusable until expiry")


_ENTERPRISE_GONE = {"revoked": (Reason.ENTERPRISE_REVOKED, "吊销 (licence revoked)"),
                    "deregistered": (Reason.ENTERPRISE_DEREGISTERED, "注销 (deregistered)")}


def _enterprise_status(v: _Scan) -> Check:
    info = v.source.enterprise(v.token.uscc)
    if info is False:
        return Check(CheckName.STATUS, Status.SKIPPED, Reason.OFFLINE, "offline: the enterprise's live status is not known")
    if info is None:
        return Check(CheckName.STATUS, Status.INVALID, Reason.ENTERPRISE_UNKNOWN, f"{v.token.uscc} is not registered")
    v.facts["enterprise"] = {"uscc": info.uscc, "name": info.name, "status": info.status}
    if info.status in _ENTERPRISE_GONE:
        reason, label = _ENTERPRISE_GONE[info.status]
        return Check(CheckName.STATUS, Status.INVALID, reason, f"the enterprise is {label}")
    if info.status == "abnormal":
        return Check(CheckName.STATUS, Status.VALID, Reason.ENTERPRISE_ABNORMAL,
                     "the enterprise exists but is listed as abnormal (经营异常)")
    return Check(CheckName.STATUS, Status.VALID, Reason.ENTERPRISE_ACTIVE, "the enterprise is active (存续)")


def _static(v: _Scan) -> bool:
    return v.token.is_static


def _dynamic(v: _Scan) -> bool:
    return not v.token.is_static


def _key_known(v: _Scan) -> bool:
    return v.key is not None


STEPS: tuple[Step[_Scan], ...] = (
    Step(CheckName.FORMAT, _format, final=True),
    Step(CheckName.ORIGIN, _origin, final=True),
    Step(CheckName.SIGNATURE, _recover, final=True),
    # a static code: signed by a registrar key of the key table, still in force, a registrar on chain
    Step(CheckName.SIGNATURE, _static_signature, needs=Source.DATABASE, applies=_static),
    Step(CheckName.KEY, _static_key, applies=_key_known),
    Step(CheckName.ISSUER, _static_issuer, needs=Source.CHAIN, applies=_key_known),
    # a dynamic code: signed by the enterprise's key on chain, within its lifetime, used once
    Step(CheckName.SIGNATURE, _dynamic_signature, needs=Source.CHAIN, applies=_dynamic),
    Step(CheckName.EXPIRY, _expiry, applies=_dynamic),
    Step(CheckName.REPLAY, _replay, needs=Source.DATABASE, applies=_dynamic),
    Step(CheckName.STATUS, _enterprise_status, needs=Source.DATABASE),
)


def verify(text: str, source: TrustSource, now: int | None = None) -> Verdict:
    facts = dict.fromkeys(FACTS)
    scan = _Scan(text, source, int(time.time()) if now is None else now, facts)
    verdict = run(STEPS, scan, Verdict(facts=facts))
    facts["genuine"] = combine([c for c in verdict.checks if c.name in GENUINE]).value
    return verdict
