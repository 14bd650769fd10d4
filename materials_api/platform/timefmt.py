"""Times as the API and the pages write them. The database keeps UTC (SQLite hands it back
without a zone): the API says so in every timestamp (`…+00:00`), and people read Beijing time,
labelled (China keeps one zone and no daylight saving: a fixed +08:00 needs no tz database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "北京时间")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 with its zone: a naive value from the database is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def calendar_day(epoch: int | float | None) -> str:
    """A date a person entered (a licence's 有效期, a grant's end), as entered: dates are kept as
    that day's start or end in UTC (records/routes.py), so the UTC day is the day that was meant
    (None: no end date, 长期). Instants are shown with `beijing_time`."""
    if not epoch:
        return "长期"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d")


def beijing_time(epoch: int | float) -> str:
    return datetime.fromtimestamp(epoch, BEIJING).strftime("%Y-%m-%d %H:%M（北京时间）")
