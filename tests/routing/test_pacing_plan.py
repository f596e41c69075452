"""Pacing plans (routing/pacing.py): phases by local wall time, edges across midnight and
across DST changes in named time zones, local midnights, profile validation."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from routing.pacing import ACTIONS_ONLY, ACTIVE, OFF, Pacing, parse_window, phase_at, plan


def ms(text: str, tz: str = "UTC") -> int:
    """A wall time in `tz` as unix ms; an explicit offset in `text` wins."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return round(moment.timestamp() * 1000)


def test_a_window_across_midnight() -> None:
    profile = Pacing(timezone="Europe/Berlin", active_hours=("22:00-06:00",))
    got = plan(profile, ms("2025-06-15T23:00", "Europe/Berlin"))
    assert (got.phase, got.next_phase) == (ACTIVE, OFF)
    assert got.until == ms("2025-06-16T06:00", "Europe/Berlin")
    assert got.next_until == ms("2025-06-16T22:00", "Europe/Berlin")
    assert phase_at(profile, ms("2025-06-16T05:59:59", "Europe/Berlin")) == ACTIVE
    assert phase_at(profile, ms("2025-06-16T06:00", "Europe/Berlin")) == OFF
    assert phase_at(profile, ms("2025-06-16T21:59:59", "Europe/Berlin")) == OFF


def test_actions_only_hours_win_over_active_hours() -> None:
    profile = Pacing(active_hours=("08:00-20:00",), actions_only_hours=("12:00-13:00",))
    got = plan(profile, ms("2025-06-15T11:00"))
    assert (got.phase, got.until, got.next_phase, got.next_until) == (
        ACTIVE,
        ms("2025-06-15T12:00"),
        ACTIONS_ONLY,
        ms("2025-06-15T13:00"),
    )
    assert phase_at(Pacing(actions_only_hours=("00:00-06:00",)), ms("2025-06-15T07:00")) == ACTIVE


def test_no_hours_means_always_active() -> None:
    got = plan(Pacing(timezone="Asia/Tokyo"), ms("2025-06-15T11:00"))
    assert (got.phase, got.until, got.next_phase) == (ACTIVE, None, None)
    assert plan(Pacing(active_hours=("00:00-24:00",)), ms("2025-06-15T11:00")).until is None


def test_a_window_edge_after_spring_forward() -> None:
    """New York skips 02:00-03:00 on 2025-03-09: 09:00 that day is 13:00 UTC, not 14:00."""
    profile = Pacing(timezone="America/New_York", active_hours=("09:00-17:00",))
    got = plan(profile, ms("2025-03-08T18:00", "America/New_York"))
    assert got.phase == OFF
    assert got.until == ms("2025-03-09T13:00:00+00:00")
    assert got.next_until == ms("2025-03-09T21:00:00+00:00")
    # Local midnights: a 23-hour day.
    assert got.day_end == ms("2025-03-09T05:00:00+00:00")
    assert got.next_day_end == ms("2025-03-10T04:00:00+00:00")


def test_a_wall_time_repeated_by_fall_back_is_two_edges() -> None:
    """Berlin repeats 02:00-03:00 on 2025-10-26: 01:00-02:30 is open twice from 02:00."""
    profile = Pacing(timezone="Europe/Berlin", active_hours=("01:00-02:30",))
    got = plan(profile, ms("2025-10-26T01:30:00+02:00"))
    assert got.phase == ACTIVE
    assert got.until == ms("2025-10-26T02:30:00+02:00")  # 00:30 UTC
    assert got.next_phase == OFF
    assert got.next_until == ms("2025-10-26T02:00:00+01:00")  # 01:00 UTC: 02:00 again
    assert phase_at(profile, ms("2025-10-26T02:15:00+01:00")) == ACTIVE


def test_local_midnights_follow_the_time_zone() -> None:
    got = plan(Pacing(timezone="Asia/Tokyo"), ms("2025-06-15T23:30", "Asia/Tokyo"))
    assert got.day_end == ms("2025-06-16T00:00", "Asia/Tokyo")
    assert datetime.fromtimestamp(got.day_end / 1000, UTC).hour == 15


@pytest.mark.parametrize(
    "fields",
    [
        {"timezone": "Mars/Olympus"},
        {"active_hours": ("9-17",)},
        {"active_hours": ("09:00-09:00",)},
        {"actions_only_hours": ("25:00-26:00",)},
        {"fast_cap": -1},
        {"min_gap_seconds": -1},
        {"gap_jitter_seconds": 100_000},
    ],
)
def test_bad_profiles_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Pacing(**fields)  # type: ignore[arg-type]


def test_windows_parse() -> None:
    assert parse_window("09:00-23:30") == (540, 1410)
    assert parse_window("22:00-06:00") == (1320, 360)
    assert parse_window("00:00-24:00") == (0, 1440)


def test_the_profile_survives_the_account_hash() -> None:
    profile = Pacing(
        timezone="Europe/Paris",
        active_hours=("08:00-12:00", "14:00-22:00"),
        actions_only_hours=("12:00-14:00",),
        fast_cap=40,
        relax_cap=0,
        caps_count_children=False,
        min_gap_seconds=45,
        gap_jitter_seconds=30.5,
    )
    raw = {key: value for key, value in profile.fields().items() if value}
    assert Pacing.from_fields(raw) == profile
    assert Pacing.from_fields({}) is None
