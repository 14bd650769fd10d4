"""Scans per hour for the district page, from the verdict counter `/metrics` already keeps.

Counting a scan costs nothing more: every `interval` seconds each instance reads its processes'
code-verdict totals (the same counter Prometheus scrapes, summed over the workers), and adds what
moved since the last reading to the current hour's row per status. Counters restart with the
server; the first reading after a start adds everything counted since."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from chain.clock import Clock
from materials_api.platform.models import ScanHour

STATUSES = ("VALID", "INVALID", "ERROR")


class ScanHours:
    def __init__(self, sessions: sessionmaker, read_totals: Callable[[], dict[str, float]], clock: Clock):
        self.sessions = sessions
        self.read_totals = read_totals
        self.clock = clock
        self._last: dict[str, float] = {}

    def record(self) -> int:
        """Add the verdicts counted since the last call to this hour; returns how many."""
        totals = self.read_totals()
        moved = {s: int(v - self._last.get(s, 0)) for s, v in totals.items() if s in STATUSES}
        moved = {s: n for s, n in moved.items() if n > 0}
        hour = int(self.clock.time()) // 3600 * 3600
        for status, n in moved.items():
            self._add(hour, status, n)
        self._last = dict(totals)
        return sum(moved.values())

    def _add(self, hour: int, status: str, n: int) -> None:
        where = (ScanHour.hour == hour) & (ScanHour.status == status)
        for _ in range(3):  # another instance may insert the same row first: then it is an update
            try:
                with self.sessions.begin() as s:
                    if s.execute(update(ScanHour).where(where).values(count=ScanHour.count + n)).rowcount == 0:
                        s.add(ScanHour(hour=hour, status=status, count=n))
                return
            except IntegrityError:
                continue

    def last_hours(self, hours: int = 24) -> list[dict]:
        """The last `hours` hours, oldest first, each with its count per status (0 when none)."""
        now = int(self.clock.time()) // 3600 * 3600
        first = now - (hours - 1) * 3600
        rows: dict[int, dict] = {h: {"hour": h, **{st: 0 for st in STATUSES}} for h in range(first, now + 1, 3600)}
        with self.sessions() as s:
            for hour, status, count in s.execute(select(ScanHour.hour, ScanHour.status, ScanHour.count)
                                                 .where(ScanHour.hour >= first)):
                if hour in rows and status in STATUSES:
                    rows[hour][status] += count
        return list(rows.values())
