"""The account view's pacing (routing/codec.py's pace_status) between ticks: it reads the
fields as they are at the view's now, so a window's edge, a local midnight or a gap's end that
the tick has not applied yet already shows (the tick runs every second; an operator reading
`accounts show` right at an edge should not see the old state)."""

from __future__ import annotations

from routing.model import Mode, Plan
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, reserved, staged
from tests.routing.test_pacing import at, paced, root, status
from tests.routing.test_pacing_plan import ms


async def test_a_window_edge_shows_before_the_tick_applies_it(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T16:59")
    await paced(store, 1, active_hours=("09:00-17:00",))
    at(clock, "2025-06-15T17:00")  # no tick, no decision since
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert (pace.phase, pace.held) == ("off", "paced:outside_hours")
    assert pace.phase_until == clock() + 16 * 3600  # the next day's 09:00, as planned
    assert pace.next_phase == "active"  # the phase after it: the plan's look-ahead, renewed
    assert staged(await root(store, "r1")).reason == "paced:outside_hours"  # as routing says


async def test_counts_reset_at_local_midnight_before_the_tick(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T23:00", "Asia/Tokyo")
    await paced(store, 1, timezone="Asia/Tokyo", fast_cap=1)
    reserved(await root(store, "f1"))
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.fast_today, pace.held) == (1, "")
    assert staged(await root(store, "f2", Mode.FAST)).reason == "paced:daily_cap"
    at(clock, "2025-06-16T00:00", "Asia/Tokyo")
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert (pace.fast_today, pace.held, pace.ready_at) == (0, "", None)
    assert pace.day_ends == clock() + 86400


async def test_a_held_gap_ends_in_the_view_at_its_end(store: PoolStore, clock: FakeClock) -> None:
    await paced(store, 1, min_gap_seconds=60)
    reserved(await root(store, "r1"))
    assert staged(await root(store, "r2")).reason == "paced:gap"  # held now (`gp`)
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.held, pace.gap_until) == ("paced:gap", clock() + 60)
    clock.advance(60)
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.held, pace.gap_until, pace.ready_at) == ("", None, None)


async def test_actions_only_hours_then_off_hours_give_when_the_next_window_opens(
    store: PoolStore, clock: FakeClock
) -> None:
    """Found from outside: in actions-only hours followed by off hours the view gave no ready
    time (the plan looks two phases ahead), though the profile says when work comes back."""
    at(clock, "2025-06-15T12:30")
    await paced(store, 1, active_hours=("09:00-12:00",), actions_only_hours=("12:00-13:00",))
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.held, pace.next_phase) == ("paced:actions_only", "off")
    assert pace.ready_at == clock() + 20.5 * 3600  # tomorrow's 09:00
    both = ("22:00-06:00",)  # the same hours both ways: actions-only wins, never active
    await paced(store, 2, active_hours=both, actions_only_hours=both)
    pace = (await status(store, 2)).pace
    assert pace is not None and pace.ready_at is None


async def test_a_cap_on_the_only_class_outlasts_a_gap_in_the_view(
    store: PoolStore, clock: FakeClock
) -> None:
    """Found from outside: a Basic plan at its fast cap and in a gap showed `paced:gap`, ready
    at the gap's end, a day too early; the cap holds it until midnight."""
    at(clock, "2025-06-15T10:00")
    await paced(store, 1, Plan.BASIC, fast_cap=1, min_gap_seconds=60)
    reserved(await root(store, "r1"))
    pace = (await status(store, 1)).pace
    assert pace is not None and pace.gap_until == clock() + 60
    assert (pace.held, pace.ready_at) == ("paced:daily_cap", pace.day_ends)
    assert pace.day_ends == ms("2025-06-16T00:00") / 1000
    clock.advance(60)
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.held, pace.ready_at) == ("paced:daily_cap", pace.day_ends)
