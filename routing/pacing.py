"""Pacing: accounts that behave like people (active hours, daily caps, gaps, backup tier).

An account's `Pacing` profile is declared by the operator (pool file, admin API). Lua can't
read time zones, so the time-driven part is computed here, in Python, with `zoneinfo`
(IANA names, DST-correct): `plan(profile, now)` gives the phase the account is in now
(active, actions-only or off), when it ends and what follows until when, and the next two
local midnights (daily caps reset there). The scripts store that plan on the account and
apply its edges themselves at the exact millisecond (`pace_advance` in routing/lua/pacing.lua);
the maintenance tick asks for a new plan once an account has used up its look-ahead
(docs/routing.md, *Pacing*).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACTIVE, ACTIONS_ONLY, OFF = "a", "o", "x"  # phases, as the account hash stores them
HORIZON_DAYS = 3  # edges looked for ahead of now; windows repeat daily, so 3 days is plenty
MAX_GAP_SECONDS = 86400
MAX_WINDOWS = 24  # per list of windows: more would be a mistake (and a slow plan)
MAX_DAILY_CAP = 1_000_000
_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class Tier(StrEnum):
    PRIMARY = "primary"  # takes work by the routing rules
    BACKUP = "backup"  # only when no primary can: no fast time left, or none active


def parse_window(text: str) -> tuple[int, int]:
    """`"HH:MM-HH:MM"` (local time; the end may be `24:00`; an end at or before the start
    crosses midnight) as (start, end) minutes of the day. ValueError when malformed."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise ValueError(f"expected a window like 09:00-23:30, got {text!r}")
    sh, sm, eh, em = (int(part) for part in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em > 0):
        raise ValueError(f"not a time of day in {text!r}")
    start, end = sh * 60 + sm, eh * 60 + em
    if start == end % 1440 and end != 1440:
        raise ValueError(f"a window needs a start and a different end: {text!r}")
    return start, end


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError when unknown (or not a name at all)."""
    if not isinstance(name, str):  # a pool file's number, date or empty value (null)
        got = "nothing" if name is None else str(name)
        raise ValueError(f"expected a time zone name like Europe/Berlin, got {got}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name like Europe/Berlin)") from exc


@dataclass(frozen=True)
class Pacing:
    """One account's pacing profile. Caps None: no cap; 0 is a valid cap (no such jobs)."""

    timezone: str = "UTC"
    active_hours: tuple[str, ...] = ()  # empty: always active
    actions_only_hours: tuple[str, ...] = ()  # child tasks of its own grids only
    fast_cap: int | None = None  # fast + turbo jobs per local day
    relax_cap: int | None = None  # relax jobs per local day
    caps_count_children: bool = True
    min_gap_seconds: float = 0.0
    gap_jitter_seconds: float = 0.0
    tier: Tier = Tier.PRIMARY

    def __post_init__(self) -> None:
        zone(self.timezone)
        for windows in (self.active_hours, self.actions_only_hours):
            if len(windows) > MAX_WINDOWS:
                raise ValueError(f"at most {MAX_WINDOWS} windows in a list")
            for window in windows:
                parse_window(window)
        for cap in (self.fast_cap, self.relax_cap):
            if cap is not None and not 0 <= cap <= MAX_DAILY_CAP:
                raise ValueError(f"a daily cap must be from 0 to {MAX_DAILY_CAP}")
        for name in ("min_gap_seconds", "gap_jitter_seconds"):
            gap = getattr(self, name)
            if not 0 <= gap <= MAX_GAP_SECONDS:
                raise ValueError(f"gaps must be from 0 to {MAX_GAP_SECONDS} seconds")
            object.__setattr__(self, name, gap + 0.0)  # -0.0 is 0

    def fields(self) -> dict[str, str]:
        """The profile as the account hash stores it (routing/lua/pacing.lua): '' is absent."""
        return {
            "tz": self.timezone,
            "ah": ",".join(self.active_hours),
            "ao": ",".join(self.actions_only_hours),
            "kf": "" if self.fast_cap is None else str(self.fast_cap),
            "kr": "" if self.relax_cap is None else str(self.relax_cap),
            "cc": "" if self.caps_count_children else "0",
            "gm": str(round(self.min_gap_seconds * 1000)) if self.min_gap_seconds else "",
            "gj": str(round(self.gap_jitter_seconds * 1000)) if self.gap_jitter_seconds else "",
            "ti": "backup" if self.tier is Tier.BACKUP else "",
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> Pacing | None:
        """The profile back from an account hash; None when the account has none."""
        if "tz" not in raw:
            return None
        return cls(
            timezone=raw["tz"],
            active_hours=split(raw.get("ah", "")),
            actions_only_hours=split(raw.get("ao", "")),
            fast_cap=int(raw["kf"]) if raw.get("kf") else None,
            relax_cap=int(raw["kr"]) if raw.get("kr") else None,
            caps_count_children=raw.get("cc") != "0",
            min_gap_seconds=int(raw.get("gm") or 0) / 1000,
            gap_jitter_seconds=int(raw.get("gj") or 0) / 1000,
            tier=Tier.BACKUP if raw.get("ti") == "backup" else Tier.PRIMARY,
        )


def split(text: str) -> tuple[str, ...]:
    return tuple(item for item in text.split(",") if item)


def _inside(minute: float, windows: tuple[str, ...]) -> bool:
    for window in windows:
        start, end = parse_window(window)
        if start < end:
            if start <= minute < end:
                return True
        elif minute >= start or minute < end:
            return True
    return False


def phase_at(profile: Pacing, at_ms: int) -> str:
    """The phase at `at_ms` (unix ms) by local wall time: actions-only hours win over active
    hours; no active hours at all means always active."""
    local = datetime.fromtimestamp(at_ms / 1000, zone(profile.timezone))
    minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
    if _inside(minute, profile.actions_only_hours):
        return ACTIONS_ONLY
    if not profile.active_hours or _inside(minute, profile.active_hours):
        return ACTIVE
    return OFF


def _instant(day: date, minute: int, tz: ZoneInfo, fold: int) -> int:
    wall = datetime.combine(day + timedelta(days=minute // 1440), time(0), tzinfo=tz)
    wall = wall.replace(hour=(minute % 1440) // 60, minute=minute % 60, fold=fold)
    return round(wall.timestamp() * 1000)


def local_midnights(profile: Pacing, now_ms: int) -> tuple[int, int]:
    """The next two local midnights after `now_ms` (unix ms): where daily caps reset."""
    tz = zone(profile.timezone)
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    first = _instant(today + timedelta(days=1), 0, tz, 0)
    return first, _instant(today + timedelta(days=2), 0, tz, 0)


@dataclass(frozen=True)
class PacePlan:
    """What the scripts need to follow the profile without Python for a while (unix ms)."""

    phase: str
    until: int | None  # the phase ends here (None: it never changes)
    next_phase: str | None
    next_until: int | None
    day_end: int
    next_day_end: int

    def fields(self) -> dict[str, str]:
        def ms(value: int | None) -> str:
            return "" if value is None else str(value)

        return {
            "ph": self.phase,
            "pu": ms(self.until),
            "pn": self.next_phase or "",
            "pw": ms(self.next_until),
            "de": str(self.day_end),
            "dn": str(self.next_day_end),
        }


def _offset_changes(tz: ZoneInfo, start: date, days: int) -> set[int]:
    """The instants (unix ms) where the zone's UTC offset changes on the local days from
    `start`: a wall time jumps there, so the phase may too."""
    out: set[int] = set()
    for offset in range(days):
        low = _instant(start + timedelta(days=offset), 0, tz, 0) // 1000
        high = _instant(start + timedelta(days=offset + 1), 0, tz, 0) // 1000

        def utcoffset(second: int) -> timedelta | None:
            return datetime.fromtimestamp(second, tz).utcoffset()

        if utcoffset(low) == utcoffset(high):
            continue
        first = utcoffset(low)
        while high - low > 1:  # the first second with the new offset
            middle = (low + high) // 2
            if utcoffset(middle) == first:
                low = middle
            else:
                high = middle
        out.add(high * 1000)
    return out


def plan(profile: Pacing, now_ms: int) -> PacePlan:
    """The phase now, its end and the next phase's end, and the next two local midnights.
    Edges are every window boundary on the local days around now, both occurrences of a
    wall time repeated by a DST change included; a phase changes where the phase by local
    wall time differs, and the instants where the zone's offset changes (a repeated hour
    may reopen a window)."""
    tz = zone(profile.timezone)
    today = datetime.fromtimestamp(now_ms / 1000, tz).date()
    minutes = {m for w in (*profile.active_hours, *profile.actions_only_hours)
               for m in parse_window(w)}  # fmt: skip
    edges = sorted(
        {
            _instant(today + timedelta(days=offset), minute, tz, fold)
            for offset in range(-1, HORIZON_DAYS + 1)
            for minute in minutes
            for fold in (0, 1)
        }
        | (_offset_changes(tz, today, HORIZON_DAYS + 1) if minutes else set())
    )
    current = phase_at(profile, now_ms)
    found: list[tuple[int, str]] = []
    for edge in edges:
        if edge <= now_ms:
            continue
        phase = phase_at(profile, edge)
        if phase != (found[-1][1] if found else current):
            found.append((edge, phase))
            if len(found) == 2:
                break
    day_end, next_day_end = local_midnights(profile, now_ms)
    return PacePlan(
        phase=current,
        until=found[0][0] if found else None,
        next_phase=found[0][1] if found else None,
        next_until=found[1][0] if len(found) > 1 else None,
        day_end=day_end,
        next_day_end=next_day_end,
    )


def profile_json(profile: Pacing | None, now_ms: int) -> str:
    """The profile and its plan as one JSON object of account-hash fields ('' when none):
    what apply_account.lua takes."""
    if profile is None:
        return ""
    return json.dumps(profile.fields() | plan(profile, now_ms).fields(), separators=(",", ":"))


def plan_args(
    ids: Sequence[str], rows: Sequence[Sequence[bytes | str | None]], now_ms: int
) -> list[str | int]:
    """pace_plan.lua's arguments: for each account (its `tz`, `ah`, `ao` hash fields in
    `rows`; none without a time zone), its id, the profile the plan is for, the new plan."""
    args: list[str | int] = []
    for bot_id, row in zip(ids, rows, strict=True):
        tz, ah, ao = (item.decode() if isinstance(item, bytes) else item or "" for item in row)
        if not tz:
            continue
        profile = Pacing(timezone=tz, active_hours=split(ah), actions_only_hours=split(ao))
        args += [bot_id, f"{tz}|{ah}|{ao}", *plan(profile, now_ms).fields().values()]
    return args
