"""The company page's timeline of its licence and permits: one bar per record from the day it
took effect to the day it ends, coloured by what it is today (valid, ending within 30 days,
ended, revoked or suspended), with a line at today. Drawn here as SVG (no script, no style
attribute: the pages' policy allows neither), one bar per row of the list below it."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400
SOON = 30 * DAY


@dataclass(frozen=True)
class Bar:
    label: str
    x: float  # percent of the width
    width: float
    y: int
    css: str  # VALID, CAUTION, EXPIRED, INVALID
    note: str


@dataclass(frozen=True)
class Timeline:
    bars: list[Bar]
    today_x: float
    height: int
    start_year: int
    end_year: int


def standing_of(state: str, valid_until: int | None, now: int) -> tuple[str, str]:
    """(colour, words) of one record today."""
    if state in ("revoked", "suspended"):
        return "INVALID", "已撤销" if state == "revoked" else "暂停"
    if valid_until and valid_until < now:
        return "EXPIRED", "已过期"
    if valid_until and valid_until - now < SOON:
        return "CAUTION", f"{max(1, (valid_until - now) // DAY)} 天后到期"
    return "VALID", "有效"


def permits_timeline(rows: list[dict], now: int) -> Timeline | None:
    """`rows`: kind_name, valid_from, valid_until (epoch seconds or None), state. None for none."""
    from datetime import datetime, timezone

    rows = [r for r in rows if r["state"] != "removed"]
    if not rows:
        return None
    start = min([r["valid_from"] or r["valid_until"] or now for r in rows] + [now - 365 * DAY])
    end = max([r["valid_until"] or now for r in rows] + [now + 365 * DAY])
    span = max(end - start, DAY)

    def at(t: int) -> float:
        return round(100 * (t - start) / span, 2)

    bars = []
    for i, r in enumerate(rows):
        css, note = standing_of(r["state"], r["valid_until"], now)
        left = at(r["valid_from"] or start)
        right = at(r["valid_until"]) if r["valid_until"] else 100.0  # 长期: to the edge
        bars.append(Bar(r["kind_name"], left, max(right - left, 0.8), 6 + i * 16, css, note))
    year = lambda t: datetime.fromtimestamp(t, timezone.utc).year  # noqa: E731
    return Timeline(bars, at(now), 6 + len(rows) * 16, year(start), year(end))
