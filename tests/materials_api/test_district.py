"""Scans per hour for the district page: what /metrics counts, written down per hour by each
instance, added up across instances, never counted twice."""

from chain.verdict import Check, CheckName, Reason, Status, Verdict
from materials_api.platform.metrics import Metrics
from materials_api.platform.scan_hours import ScanHours


def scans(metrics: Metrics, status: Status, n: int) -> None:
    for _ in range(n):
        metrics.verdict("code", Verdict([Check(CheckName.SIGNATURE, status, Reason.SIGNED if status is Status.VALID else Reason.CODE_SIGNATURE)]))


def test_two_instances_add_their_scans_to_the_same_hour_and_a_new_hour_starts_at_zero(runtime):
    first, second = Metrics(), Metrics()  # two instances (each its own processes' counts)
    hours_a = ScanHours(runtime.sessions, lambda: first.verdict_totals("code"), runtime.clock)
    hours_b = ScanHours(runtime.sessions, lambda: second.verdict_totals("code"), runtime.clock)
    scans(first, Status.VALID, 5)
    scans(first, Status.INVALID, 2)
    scans(second, Status.VALID, 3)
    second.verdict("material", Verdict([Check(CheckName.SIGNATURE, Status.VALID, Reason.SIGNED)]))  # not a scan of a code
    assert hours_a.record() == 7 and hours_b.record() == 3
    assert hours_a.record() == 0  # read again: nothing new, nothing counted twice
    now = hours_a.last_hours(24)[-1]
    assert (now["VALID"], now["INVALID"], now["ERROR"]) == (8, 2, 0)
    runtime.clock.advance(3600)
    scans(second, Status.ERROR, 1)
    hours_b.record()
    last = hours_a.last_hours(24)
    assert len(last) == 24 and [h["hour"] for h in last] == sorted(h["hour"] for h in last)
    assert (last[-2]["VALID"], last[-1]["VALID"], last[-1]["ERROR"]) == (8, 0, 1)
    runtime.clock.advance(24 * 3600)
    assert all(h["VALID"] == h["INVALID"] == h["ERROR"] == 0 for h in hours_a.last_hours(24))  # a day later
