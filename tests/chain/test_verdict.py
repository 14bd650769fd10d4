"""The one verification pipeline: named steps, a source's failure turned into ERROR once, a
frozen vocabulary of check names and reasons, every one documented."""

import re
from pathlib import Path

import pytest

from chain.verdict import (
    VERDICT_VERSION,
    Check,
    CheckName,
    Reason,
    Source,
    SourceUnavailable,
    Status,
    Step,
    Verdict,
    chain_unavailable,
    run,
)
from chain.errors import ChainAnswerMalformed, ChainNotAnswering, ChainUnreachable

DOC = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"


class Calls(dict):
    def step(self, name, check, *, raises=None):
        def _run(_ctx):
            self[name] = self.get(name, 0) + 1
            if raises:
                raise raises
            return check
        return _run


def ok(name, reason):
    return Check(name, Status.VALID, reason, "")


def test_a_dead_source_is_asked_once_and_every_check_that_needs_it_says_error():
    calls = Calls()
    steps = [
        Step(CheckName.INTEGRITY, calls.step("integrity", ok(CheckName.INTEGRITY, Reason.HASH_MATCHES))),
        Step(CheckName.ANCHOR, calls.step("anchor", None, raises=SourceUnavailable("node timed out")), needs=Source.CHAIN),
        Step(CheckName.ISSUER, calls.step("issuer", ok(CheckName.ISSUER, Reason.NOTARY)), needs=Source.CHAIN),
        Step(CheckName.STATUS, calls.step("status", ok(CheckName.STATUS, Reason.CURRENT)), needs=Source.DATABASE),
    ]
    verdict = run(steps, None)
    assert calls == {"integrity": 1, "anchor": 1, "status": 1}  # issuer was not asked: its source is down
    assert [(c.name, c.status, c.reason) for c in verdict.checks] == [
        ("integrity", Status.VALID, Reason.HASH_MATCHES),
        ("anchor", Status.ERROR, Reason.CHAIN_UNAVAILABLE),
        ("issuer", Status.ERROR, Reason.CHAIN_UNAVAILABLE),
        ("status", Status.VALID, Reason.CURRENT),
    ]
    assert verdict.status is Status.ERROR  # never INVALID, never VALID


def test_error_never_hides_an_invalid_and_a_final_step_ends_the_verdict():
    calls = Calls()
    steps = [
        Step(CheckName.FORMAT, calls.step("format", Check(CheckName.FORMAT, Status.INVALID, Reason.CODE_LENGTH)), final=True),
        Step(CheckName.ORIGIN, calls.step("origin", ok(CheckName.ORIGIN, Reason.ORIGIN_MATCHES))),
    ]
    verdict = run(steps, None)
    assert calls == {"format": 1} and verdict.status is Status.INVALID and len(verdict.checks) == 1
    mixed = Verdict([Check("anchor", "ERROR", "chain_unavailable"), Check("integrity", "INVALID", "hash_mismatch")])
    assert mixed.status is Status.INVALID


def test_a_step_that_does_not_apply_leaves_no_check_even_when_its_source_is_down():
    steps = [
        Step(CheckName.ANCHOR, lambda _: (_ for _ in ()).throw(SourceUnavailable("down")), needs=Source.CHAIN),
        Step(CheckName.EXPIRY, lambda _: ok(CheckName.EXPIRY, Reason.NOT_EXPIRED), needs=Source.CHAIN,
             applies=lambda _: False),
    ]
    assert [c.name for c in run(steps, None).checks] == [CheckName.ANCHOR]


def test_names_and_reasons_are_a_closed_vocabulary():
    with pytest.raises(ValueError):
        Check("anchor", Status.VALID, "looks_fine_to_me")
    with pytest.raises(ValueError):
        Check("vibes", Status.VALID, "current")
    check = Check("anchor", "VALID", "root_anchored", "anchored")
    assert check.as_dict() == {"name": "anchor", "status": "VALID", "reason": "root_anchored", "message": "anchored"}
    assert f"{check.reason}" == "root_anchored"  # printed as the code, not as the enum's name


def test_every_check_name_and_reason_is_documented_with_the_vocabulary_version():
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M))
    missing = {m.value for m in (*CheckName, *Reason)} - documented
    assert not missing, f"document in docs/verdicts.md: {sorted(missing)}"
    assert f"Vocabulary version: {VERDICT_VERSION}" in text


def test_every_combination_of_check_outcomes_combines_by_the_rule():
    """All 4^4 outcomes of four checks (and every shorter list): INVALID beats ERROR beats SKIPPED
    beats VALID; a SKIPPED (required, not made) check never adds up to VALID; no check is not VALID."""
    import itertools

    from chain.verdict import combine

    names = [CheckName.INTEGRITY, CheckName.ANCHOR, CheckName.ISSUER, CheckName.STATUS]
    seen = set()
    for n in range(len(names) + 1):
        for outcome in itertools.product(list(Status), repeat=n):
            checks = [Check(name, st, Reason.OFFLINE) for name, st in zip(names, outcome)]
            got = combine(checks)
            seen.add(got)
            if Status.INVALID in outcome:
                assert got is Status.INVALID
            elif Status.ERROR in outcome:
                assert got is Status.ERROR
            elif Status.SKIPPED in outcome or not outcome:
                assert got is Status.SKIPPED, outcome
            else:
                assert got is Status.VALID and outcome and all(s is Status.VALID for s in outcome)
    assert seen == set(Status)


NODE = "http://10.20.30.40:8545/rpc?token=s3cr3t"


@pytest.mark.parametrize("exc, reason, said", [
    (ChainNotAnswering(f"{NODE} did not answer in 3 s"), Reason.CHAIN_TIMEOUT, "the chain node did not answer in time"),
    (ChainUnreachable(f"connection refused: {NODE}"), Reason.CHAIN_UNAVAILABLE,
     "the chain node could not be asked (ChainUnreachable)"),
    (ChainAnswerMalformed(f"no code at 0x{'ab' * 20} on {NODE}"), Reason.NODE_MALFORMED,
     "the node's answer is not a Qiyema contract's (no code at the address, or a truncated answer)"),
    (ValueError(f"could not decode the answer of {NODE}"), Reason.NODE_MALFORMED,
     "the node's answer is not a Qiyema contract's (no code at the address, or a truncated answer)"),
])
def test_a_chain_that_cannot_answer_is_an_error_of_the_chain_that_names_no_node(exc, reason, said, caplog):
    """Liveness, never forgery: the chain source is ERROR with its reason; the stranger reading
    the verdict learns nothing of the node (its URL, host, token), the operator's log does."""
    down = chain_unavailable(exc)
    assert isinstance(down, SourceUnavailable)
    assert (down.source, down.reason, str(down)) == (Source.CHAIN, reason, said)
    assert "10.20.30.40" in caplog.text and "s3cr3t" not in str(down)
    calls = Calls()
    verdict = run([Step(CheckName.ANCHOR, calls.step("anchor", None, raises=down), needs=Source.CHAIN),
                   Step(CheckName.STATUS, calls.step("status", ok(CheckName.STATUS, Reason.IN_FORCE)),
                        needs=Source.CHAIN)], None)
    assert verdict.status is Status.ERROR and calls == {"anchor": 1}  # the dead chain is asked once
    assert [(c.name, c.status, c.reason) for c in verdict.checks] == [
        (CheckName.ANCHOR, Status.ERROR, reason), (CheckName.STATUS, Status.ERROR, reason)]


def test_a_writing_in_the_very_block_a_key_is_declared_compromised_from_is_not_trusted():
    """The compromise block is the first the thief may have written in: a batch in it is INVALID,
    one block before it VALID with its warning; each says so in words."""
    from chain.verdict import Reason, Status, writer_check

    def issuer(block, **kw):
        c = writer_check("notary", block, **{"held": True, "retired": False, "compromised_from": None, **kw},
                         held_reason=Reason.NOTARY, not_held_reason=Reason.NOT_NOTARY)
        return c.status, c.reason, c.message

    assert issuer(100, compromised_from=100) == (
        Status.INVALID, Reason.KEY_COMPROMISED, "written in block 100 by a notary key declared compromised from block 100")
    assert issuer(99, compromised_from=100) == (
        Status.VALID, Reason.SIGNED_BEFORE_COMPROMISE,
        "written in block 99 by a notary, before its key was declared compromised (from block 100)")
    assert issuer(99) == (Status.VALID, Reason.NOTARY, "written in block 99 by a holder of the notary role")
    assert issuer(99, retired=True) == (
        Status.VALID, Reason.KEY_RETIRED, "written in block 99 by a notary whose key was retired since")
    assert issuer(99, held=False) == (
        Status.INVALID, Reason.NOT_NOTARY, "the writer did not hold the notary role in block 99")
