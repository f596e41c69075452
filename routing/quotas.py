"""A client key's quotas, as the reserve scripts check them (routing/lua/tenants.lua).

Jobs and fast seconds are counted per calendar day and per calendar month in the key's
timezone (default UTC). The scripts never compute calendars: for each decision the store
passes the current period ids and their resets, computed here with zoneinfo from the store's
clock, as JSON terms. A new period is a new counter in Redis, so the reset needs no job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

QUOTA_LIMITS = ("jobs_day", "jobs_month", "fast_seconds_day", "fast_seconds_month")
QUOTA_THRESHOLDS = (80, 95)  # percent of a limit raised once per period (tenants.lua's too)


@dataclass(frozen=True)
class Quota:
    """None means no limit. `max_in_flight` bounds the key's tasks running at once (beyond it
    a task is staged); the other limits refuse a create (429 quota_exceeded)."""

    jobs_per_day: int | None = None
    jobs_per_month: int | None = None
    fast_seconds_per_day: int | None = None
    fast_seconds_per_month: int | None = None
    max_in_flight: int | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # ZoneInfoNotFoundError (a KeyError) on an unknown zone
        for name in ("jobs_per_day", "jobs_per_month", "fast_seconds_per_day",
                     "fast_seconds_per_month", "max_in_flight"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def limited(self) -> bool:
        return any(
            value is not None
            for value in (
                self.jobs_per_day,
                self.jobs_per_month,
                self.fast_seconds_per_day,
                self.fast_seconds_per_month,
                self.max_in_flight,
            )
        )


@dataclass(frozen=True)
class Periods:
    day: str  # e.g. 20261201, in the key's timezone
    day_reset: float  # unix seconds: the next local midnight
    month: str  # e.g. 202612
    month_reset: float  # unix seconds: the first local midnight of the next month


def periods(now: float, timezone: str = "UTC") -> Periods:
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, zone)
    today = local.date()
    tomorrow = today + timedelta(days=1)
    first_next = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return Periods(
        day=today.strftime("%Y%m%d"),
        day_reset=_midnight(tomorrow, zone),
        month=today.strftime("%Y%m"),
        month_reset=_midnight(first_next, zone),
    )


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def terms(quota: Quota | None, now: float) -> str:
    """The JSON the reserve scripts read ("" when the key has no quota)."""
    if quota is None or not quota.limited:
        return ""
    p = periods(now, quota.timezone)
    out: dict[str, object] = {}
    if quota.jobs_per_day is not None or quota.fast_seconds_per_day is not None:
        out.update(dp=p.day, dr=round(p.day_reset * 1000))
    if quota.jobs_per_month is not None or quota.fast_seconds_per_month is not None:
        out.update(mp=p.month, mr=round(p.month_reset * 1000))
    for key, value in (
        ("jd", quota.jobs_per_day),
        ("jm", quota.jobs_per_month),
        ("fd", quota.fast_seconds_per_day),
        ("fm", quota.fast_seconds_per_month),
        ("mi", quota.max_in_flight),
    ):
        if value is not None:
            out[key] = value
    return json.dumps(out, separators=(",", ":"))
