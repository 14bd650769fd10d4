"""Verdicts, one type for codes, materials and records, and the pipeline that makes them.

A verdict is a list of named, independent checks, each VALID / INVALID / ERROR / SKIPPED with a
reason from a frozen enum (docs/verdicts.md lists every one), combined into one status. A
verifier is a list of `Step`s (like oa-verify's verifiers): each names its check and the
source it reads (chain, database), decides whether it applies, and returns a typed `Check`.
`run` is the one place that turns a source's failure into ERROR: the step that hit it and every
later step needing the same source answer ERROR without being asked, so a dead node costs one
time-out, not one per check. ERROR (something could not be checked) never becomes INVALID or
VALID.

Changing a name or a reason here changes what verifiers in the field receive: add, never
rename; `VERDICT_VERSION` goes up when a member is added.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, TypeVar

from .errors import ChainAnswerMalformed, ChainNotAnswering

VERDICT_VERSION = 6  # 2: chain_timeout; 3: mirror_current, mirror_behind; 4: key_retired, key_compromised,
# signed_before_compromise, the verdict's warnings; 5: a SKIPPED check makes the verdict SKIPPED (never VALID),
# unknown_contract, node_behind, node_malformed, withdrawn, registrar_in_keyset, the code's `genuine` answer;
# 6: code_profile (a code signed under the other crypto profile), bundle_profile (a bundle hashed so)


class Status(enum.StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


class CheckName(enum.StrEnum):
    FORMAT = "format"        # the code parses (version, kind, fields)
    ORIGIN = "origin"        # the code points at this service, not a copy elsewhere
    SIGNATURE = "signature"  # signed by the key it names
    KEY = "key"              # that key is in force
    ISSUER = "issuer"        # the signer / anchorer holds the role its claim needs
    EXPIRY = "expiry"        # a dynamic code is within its lifetime
    REPLAY = "replay"        # a single-use code is used once
    STATUS = "status"        # the enterprise, material or record is in force
    INTEGRITY = "integrity"  # the bytes are the ones fingerprinted
    PROOF = "proof"          # the Merkle path leads to the root
    ANCHOR = "anchor"        # the root is on chain
    LIVENESS = "liveness"    # the chain answering is not halted


class Reason(enum.StrEnum):
    # format (the code's own parse errors, codes/token.py)
    PARSED = "parsed"
    CODE_NOT_QIYEMA = "code_not_qiyema"
    CODE_ORIGIN = "code_origin"
    CODE_ENCODING = "code_encoding"
    CODE_LENGTH = "code_length"
    CODE_VERSION = "code_version"
    CODE_KIND = "code_kind"
    CODE_FLAGS = "code_flags"
    CODE_KID = "code_kid"
    CODE_USCC = "code_uscc"
    CODE_SIGNATURE = "code_signature"
    CODE_PROFILE = "code_profile"  # (v6) signed under the other crypto profile (secp256k1 vs SM2)
    # origin
    ORIGIN_MATCHES = "origin_matches"
    FOREIGN_ORIGIN = "foreign_origin"
    # signature and key
    SIGNED = "signed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NO_CODE_SIGNER = "no_code_signer"
    KEY_ACTIVE = "key_active"
    KEY_ROTATED_OUT = "key_rotated_out"  # (until v3) a retired static-code key; now key_retired, VALID
    KEY_RETIRED = "key_retired"  # (v4) signed by a key retired since, in its term: still good
    KEY_COMPROMISED = "key_compromised"  # (v4) signed by a key declared compromised (from that time on)
    SIGNED_BEFORE_COMPROMISE = "signed_before_compromise"  # (v4) VALID, warned: before its key's compromise
    # issuer
    REGISTRAR_ON_CHAIN = "registrar_on_chain"
    REGISTRAR_IN_KEYSET = "registrar_in_keyset"  # (v5) offline: the key is on the governor-signed key set
    NOT_REGISTRAR = "not_registrar"
    NOTARY = "notary"
    NOT_NOTARY = "not_notary"
    CATEGORY_ISSUER = "category_issuer"
    NOT_CATEGORY_ISSUER = "not_category_issuer"
    # expiry and replay
    NOT_EXPIRED = "not_expired"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    FRESH = "fresh"
    REPLAYED = "replayed"
    UNKNOWN_NONCE = "unknown_nonce"
    # status: enterprises
    ENTERPRISE_ACTIVE = "enterprise_active"
    ENTERPRISE_ABNORMAL = "enterprise_abnormal"
    ENTERPRISE_REVOKED = "enterprise_revoked"
    ENTERPRISE_DEREGISTERED = "enterprise_deregistered"
    ENTERPRISE_UNKNOWN = "enterprise_unknown"
    # status: materials
    CURRENT = "current"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"  # (v5) the service's record says withdrawn or revoked, whatever the chain says yet
    # status: records
    IN_FORCE = "in_force"
    RECORD_SUSPENDED = "record_suspended"
    RECORD_REVOKED = "record_revoked"
    RECORD_REMOVED = "record_removed"
    RECORD_EXPIRED = "record_expired"
    RECORD_NOT_YET_VALID = "record_not_yet_valid"
    RECORD_REVOKED_ON_CHAIN = "record_revoked_on_chain"
    # integrity and proof
    HASH_MATCHES = "hash_matches"
    HASH_MISMATCH = "hash_mismatch"
    NO_CONTENT = "no_content"
    CONTENT_MATCHES = "content_matches"
    CONTENT_ALTERED = "content_altered"
    PATH_LEADS_TO_ROOT = "path_leads_to_root"
    PATH_MISMATCH = "path_mismatch"
    # anchor and liveness
    ROOT_ANCHORED = "root_anchored"
    UNKNOWN_CONTRACT = "unknown_contract"
    BUNDLE_PROFILE = "bundle_profile"  # (v6) hashed otherwise than the trusted deployments (keccak256 vs sm3)  # (v5) the bundle names a (chain, contract) not on the trust list
    NODE_BEHIND = "node_behind"  # (v5) ERROR: the node answering has not reached the anchoring block
    ROOT_NOT_ANCHORED = "root_not_anchored"
    NOT_ON_CHAIN_YET = "not_on_chain_yet"
    INDEX_OUT_OF_BATCH = "index_out_of_batch"
    CHAIN_LIVE = "chain_live"
    CHAIN_HALTED = "chain_halted"
    MIRROR_CURRENT = "mirror_current"  # (v3) the chain mirror read the node's head lately
    MIRROR_BEHIND = "mirror_behind"  # (v3) it has not: a change made on chain since may be missing
    # a source could not answer, or was not asked
    CHAIN_UNAVAILABLE = "chain_unavailable"
    CHAIN_TIMEOUT = "chain_timeout"  # (v2) the node did not answer in time, or is not asked yet
    NODE_MALFORMED = "node_malformed"  # (v5) ERROR: the node's answer is not a Qiyema contract's (lost state?)
    DATABASE_UNAVAILABLE = "database_unavailable"
    WRONG_CHAIN = "wrong_chain"
    NO_CHAIN = "no_chain"
    OFFLINE = "offline"


# VALID, but said beside the verdict (and shown on the verdict page).
WARNINGS = frozenset({Reason.KEY_RETIRED, Reason.SIGNED_BEFORE_COMPROMISE})


class Source(enum.StrEnum):
    """What a check may need beyond the object it is given."""

    CHAIN = "chain"
    DATABASE = "database"


UNAVAILABLE = {Source.CHAIN: Reason.CHAIN_UNAVAILABLE, Source.DATABASE: Reason.DATABASE_UNAVAILABLE}


class SourceUnavailable(Exception):
    """A source could not answer (unreachable, timed out, a different chain). Raised by a step;
    `run` turns it into ERROR for that step and every later step needing the same source."""

    def __init__(self, message: str, source: Source = Source.CHAIN, reason: Reason | None = None):
        super().__init__(message)
        self.source = source
        self.reason = reason or UNAVAILABLE[source]


def chain_unavailable(exc: Exception) -> SourceUnavailable:
    """The chain could not answer `exc`'s call: `chain_timeout` when the node accepted the call
    but did not answer in time (or, having just done so, is not asked again yet), else
    `chain_unavailable` (refused, reset, a node error); `node_malformed` when it answered
    something no Qiyema contract would (no code at the address: a node that lost its state; an
    answer that does not decode, a ValueError). Liveness, never forgery: ERROR, never INVALID."""
    # The node's own words may name its URL, host or path: they go to the operator's log, never
    # into a verdict a stranger reads.
    logging.getLogger("qiyema.verify").warning("chain could not answer a verification: %s", exc)
    if isinstance(exc, (ChainAnswerMalformed, ValueError)):
        return SourceUnavailable("the node's answer is not a Qiyema contract's (no code at the address, or a "
                                 "truncated answer)", Source.CHAIN, Reason.NODE_MALFORMED)
    reason = Reason.CHAIN_TIMEOUT if isinstance(exc, ChainNotAnswering) else Reason.CHAIN_UNAVAILABLE
    said = "did not answer in time" if reason is Reason.CHAIN_TIMEOUT else f"could not be asked ({type(exc).__name__})"
    return SourceUnavailable(f"the chain node {said}", Source.CHAIN, reason)


@dataclass(frozen=True)
class Check:
    name: CheckName
    status: Status
    reason: Reason
    message: str = ""

    def __post_init__(self):
        # Only the frozen names and reasons: a new one is added to the enums (and documented).
        object.__setattr__(self, "name", CheckName(self.name))
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "reason", Reason(self.reason))

    def as_dict(self) -> dict:
        return {"name": self.name.value, "status": self.status.value, "reason": self.reason.value,
                "message": self.message}


def combine(checks: Iterable[Check]) -> Status:
    """INVALID if any check is INVALID, else ERROR if any is ERROR, else SKIPPED if any check was
    not made (offline, no chain, no content) or there is no check at all, else VALID.

    Every check a verifier reports is one its subject requires (a step that does not apply to a
    subject reports nothing), so a SKIPPED check is a required check not made: it never adds up
    to VALID (SPEC, "Verdicts"; tests/chain/test_verdict.py runs every combination)."""
    statuses = {c.status for c in checks}
    if Status.INVALID in statuses:
        return Status.INVALID
    if Status.ERROR in statuses:
        return Status.ERROR
    if Status.SKIPPED in statuses or not statuses:
        return Status.SKIPPED
    return Status.VALID


@dataclass
class Verdict:
    """Checks, their combined status, and what the verifier learnt of its subject on the way
    (`facts`: for a code its kind, USCC, signer, expiry, scope and enterprise)."""

    checks: list[Check] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return combine(self.checks)

    def check(self, name: CheckName) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def warnings(self) -> list[str]:
        """Reasons of VALID checks a relying party should still hear about (a key retired or
        compromised since it signed)."""
        return [c.reason.value for c in self.checks if c.status is Status.VALID and c.reason in WARNINGS]

    def as_dict(self) -> dict:
        return {"status": self.status.value, "checks": [c.as_dict() for c in self.checks],
                "warnings": self.warnings, **self.facts}


Ctx = TypeVar("Ctx")


@dataclass(frozen=True)
class Step(Generic[Ctx]):
    """One named check. `applies` says whether it has anything to check here (a dynamic
    code's expiry, not a static one's); `run` returns the check (None: nothing to report) or
    raises `SourceUnavailable`. A step marked `final` ends the verdict when it is not VALID
    (nothing after a forged origin or an unreadable code means anything)."""

    name: CheckName
    run: Callable[[Ctx], Check | None]
    needs: Source | None = None
    final: bool = False
    applies: Callable[[Ctx], bool] | None = None


def run(steps: Iterable[Step[Ctx]], ctx: Ctx, verdict: Verdict | None = None) -> Verdict:
    verdict = verdict if verdict is not None else Verdict()
    down: dict[Source, SourceUnavailable] = {}
    for step in steps:
        if step.applies is not None and not step.applies(ctx):
            continue
        if step.needs in down:
            failure = down[step.needs]
            verdict.checks.append(Check(step.name, Status.ERROR, failure.reason, str(failure)))
            continue
        try:
            check = step.run(ctx)
        except SourceUnavailable as exc:
            down[exc.source] = exc
            verdict.checks.append(Check(step.name, Status.ERROR, exc.reason, str(exc)))
            continue
        if check is None:
            continue
        verdict.checks.append(check)
        if step.final and check.status is not Status.VALID:
            break
    return verdict


def writer_check(role: str, block: int, *, held: bool, retired: bool, compromised_from: int | None,
                 held_reason: Reason, not_held_reason: Reason) -> Check:
    """The ISSUER check of something written on chain in `block`: whether its writer held
    `role` in that block (retiring the key later changes nothing), then its key's compromise
    (`compromised_from`, None if never declared): from that block on INVALID `key_compromised`;
    before it VALID with the warning `signed_before_compromise`. A key retired since: VALID with
    the warning `key_retired`."""
    if not held:
        return Check(CheckName.ISSUER, Status.INVALID, not_held_reason,
                     f"the writer did not hold the {role} role in block {block}")
    if compromised_from is not None and block >= compromised_from:
        return Check(CheckName.ISSUER, Status.INVALID, Reason.KEY_COMPROMISED,
                     f"written in block {block} by a {role} key declared compromised from block {compromised_from}")
    if compromised_from is not None:
        return Check(CheckName.ISSUER, Status.VALID, Reason.SIGNED_BEFORE_COMPROMISE,
                     f"written in block {block} by a {role}, before its key was declared compromised "
                     f"(from block {compromised_from})")
    if retired:
        return Check(CheckName.ISSUER, Status.VALID, Reason.KEY_RETIRED,
                     f"written in block {block} by a {role} whose key was retired since")
    return Check(CheckName.ISSUER, Status.VALID, held_reason, f"written in block {block} by a holder of the {role} role")
