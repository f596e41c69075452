"""Pacing rules in the scripts, on the real Redis, with the clock the test moves: hours
(across midnight, actions-only), daily caps and their reset at local midnight, gaps and
their jitter, the backup tier, and why a held task waits."""

from __future__ import annotations

from typing import Any

from routing.accounts import AccountStatus
from routing.catalog import Catalog
from routing.model import AccountState, Mode, Plan, Setting
from routing.pacing import Pacing, Tier
from routing.results import Outcome, Reservation, Staged
from routing.store import PoolStore
from tests.routing import helpers
from tests.routing.helpers import FakeClock, add, reserved, staged
from tests.routing.test_pacing_plan import ms

WEEK = 7 * 86400.0  # staged timeout: held work outlives the waits below


async def root(
    store: PoolStore, task_id: str, mode: Mode = Mode.FAST, cost: int = 60, **options: Any
) -> Reservation | Staged:
    return await helpers.root(store, task_id, mode, cost, staged_timeout=WEEK, **options)


async def child(store: PoolStore, task_id: str, parent: int) -> Reservation | Staged:
    return await helpers.child(store, task_id, parent, staged_timeout=WEEK)


def at(clock: FakeClock, text: str, tz: str = "UTC") -> None:
    clock.now = ms(text, tz) / 1000


async def paced(store: PoolStore, bot_id: int, plan: Plan = Plan.PRO, **fields: Any) -> None:
    account = {k: fields.pop(k) for k in list(fields) if k in ("fast_slots", "relax_slots")}
    await add(store, bot_id, plan, pacing=Pacing(**fields), **account)


async def status(store: PoolStore, bot_id: int) -> AccountStatus:
    account = await Catalog(store).get_account(bot_id)
    assert account is not None
    return account


async def test_outside_its_hours_an_account_takes_nothing_new_and_staged_work_drains_at_the_edge(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T21:30", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("22:00-06:00",))
    assert staged(await root(store, "r1")).reason == "paced:outside_hours"
    assert staged(await root(store, "r2", Mode.RELAX, 0)).reason == "paced:outside_hours"
    assert (await status(store, 1)).pace.held == "paced:outside_hours"  # type: ignore[union-attr]
    clock.advance(30 * 60 - 0.001)
    assert await store.dispatch_staged(10, 60) == []
    clock.advance(0.001)  # 22:00 Berlin: no tick needed, the dispatch applies the edge
    got = await store.dispatch_staged(10, 60)
    assert [(r.task_id, r.bot_id) for r in got if isinstance(r, Reservation)] == [
        ("r1", 1),
        ("r2", 1),
    ]


async def test_the_window_closes_at_its_edge_across_midnight(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T23:59", "Europe/Berlin")
    await paced(store, 1, timezone="Europe/Berlin", active_hours=("22:00-06:00",))
    reserved(await root(store, "r1"))  # across midnight: still open
    at(clock, "2025-06-16T05:59:59.999", "Europe/Berlin")
    reserved(await root(store, "r2"))
    at(clock, "2025-06-16T06:00", "Europe/Berlin")
    assert staged(await root(store, "r3")).reason == "paced:outside_hours"
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert (pace.phase, pace.phase_until) == ("off", ms("2025-06-16T22:00", "Europe/Berlin") / 1000)
    assert pace.next_phase is None  # the look-ahead is used up: the tick plans again
    assert (await store.tick()).paced == (1,)
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert pace.next_phase == "active"


async def test_a_dst_change_moves_the_edge_in_utc(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-03-08T18:00", "America/New_York")
    await paced(store, 1, timezone="America/New_York", active_hours=("09:00-17:00",))
    assert staged(await root(store, "r1")).reason == "paced:outside_hours"
    at(clock, "2025-03-09T12:59:59")  # 08:59:59 EDT: the clocks went forward overnight
    await store.tick()
    assert await store.dispatch_staged(10, 60) == []
    at(clock, "2025-03-09T13:00")  # 09:00 EDT (it would be 14:00 UTC in winter)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r1"]


async def test_actions_only_hours_take_child_tasks_only(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-06-15T11:59")
    await paced(store, 1, active_hours=("08:00-20:00",), actions_only_hours=("12:00-13:00",))
    reserved(await root(store, "grid"))
    at(clock, "2025-06-15T12:00")
    assert staged(await root(store, "r1")).reason == "paced:actions_only"
    assert reserved(await child(store, "up1", 1)).decision == "inherited"
    at(clock, "2025-06-15T20:00")
    assert staged(await child(store, "up2", 1)).reason == "paced:outside_hours"


async def test_daily_caps_hold_work_until_local_midnight(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T22:00", "Asia/Tokyo")
    await paced(store, 1, timezone="Asia/Tokyo", fast_cap=2, relax_cap=1)
    reserved(await root(store, "f1"))
    reserved(await root(store, "f2", Mode.TURBO, 120))  # turbo counts as fast
    assert staged(await root(store, "f3")).reason == "paced:daily_cap"  # never relax
    reserved(await root(store, "r1", Mode.RELAX, 0))
    assert staged(await root(store, "r2", Mode.RELAX, 0)).reason == "paced:daily_cap"
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert (pace.fast_today, pace.relax_today, pace.held) == (2, 1, "paced:daily_cap")
    assert pace.day_ends == ms("2025-06-16T00:00", "Asia/Tokyo") / 1000
    at(clock, "2025-06-15T23:59:59.999", "Asia/Tokyo")
    assert await store.dispatch_staged(10, 60) == []
    at(clock, "2025-06-16T00:00", "Asia/Tokyo")
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["f3", "r2"]
    pace = (await status(store, 1)).pace
    assert pace is not None
    assert (pace.fast_today, pace.relax_today) == (1, 1)


async def test_children_count_toward_caps_unless_the_profile_says_not(
    store: PoolStore, clock: FakeClock
) -> None:
    await paced(store, 1, fast_cap=2)
    await paced(store, 2, fast_cap=2, caps_count_children=False)
    for bot_id in (1, 2):
        reserved(await root(store, f"g{bot_id}", exclude=[3 - bot_id]))
        reserved(await child(store, f"u{bot_id}", bot_id))
    assert staged(await child(store, "u1b", 1)).reason == "paced:daily_cap"
    reserved(await child(store, "u2b", 2))
    reserved(await child(store, "u2c", 2))
    assert ((await status(store, 2)).pace.fast_today) == 1  # type: ignore[union-attr]
    assert staged(await root(store, "g1b", exclude=[2])).reason == "paced:daily_cap"


async def test_a_gap_holds_root_tasks_for_min_gap_plus_jitter(
    store: PoolStore, clock: FakeClock
) -> None:
    await paced(store, 1, min_gap_seconds=30, gap_jitter_seconds=10)
    gaps = []
    for n in range(40):
        start = clock()
        reserved(await root(store, f"r{n}"))
        pace = (await status(store, 1)).pace
        assert pace is not None and pace.gap_until is not None
        gaps.append(pace.gap_until - start)
        assert staged(await root(store, f"w{n}")).reason == "paced:gap"
        reserved(await child(store, f"c{n}", 1))  # gaps hold root tasks only; it restarts it
        pace = (await status(store, 1)).pace
        assert pace is not None and pace.gap_until is not None
        gaps.append(pace.gap_until - start)
        clock.advance(pace.gap_until - clock() - 0.001)
        assert await store.dispatch_staged(10, 60) == []
        clock.advance(0.001)
        assert [r.task_id for r in await store.dispatch_staged(10, 60)] == [f"w{n}"]
        for task in (f"r{n}", f"w{n}", f"c{n}"):
            await store.settle(task, Outcome.COMPLETED)
        clock.advance(60)
    assert all(30 <= gap <= 40 for gap in gaps)
    assert len({round(gap, 3) for gap in gaps}) > 10  # the jitter varies


async def test_a_gap_sends_the_next_task_to_another_account(store: PoolStore) -> None:
    await paced(store, 1, min_gap_seconds=60)
    await paced(store, 2, min_gap_seconds=60)
    first = reserved(await root(store, "r1")).bot_id
    assert reserved(await root(store, "r2")).bot_id == 3 - first
    assert staged(await root(store, "r3")).reason == "paced:gap"


async def test_pacing_never_falls_back_to_relax(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-06-15T03:00")
    await paced(store, 1, active_hours=("08:00-20:00",))
    await add(store, 2, Plan.PRO, fast_seconds_left=0)  # relax only
    assert staged(await root(store, "f1")).reason == "paced:outside_hours"
    assert reserved(await root(store, "r1", Mode.RELAX, 0)).bot_id == 2


async def test_backups_take_work_only_when_no_primary_has_fast_time(
    store: PoolStore, clock: FakeClock
) -> None:
    await paced(store, 1, fast_slots=1)
    await paced(store, 9, tier=Tier.BACKUP)
    assert reserved(await root(store, "p1")).bot_id == 1
    assert staged(await root(store, "p2")).reason == "fast_slots_busy"  # the primary has time
    assert reserved(await root(store, "p3", Mode.RELAX, 0)).bot_id == 1
    await store.set_fast_time(1, 0)
    b1 = reserved(await root(store, "b1"))
    assert (b1.bot_id, b1.decision) == (9, "backup:no_fast_hours")
    await store.set_fast_time(1, 3600)  # fast time is back: the backup returns to idle
    await store.settle("p1", Outcome.COMPLETED)
    await store.dispatch_staged(10, 60)  # p2
    await store.settle("p2", Outcome.COMPLETED)
    assert reserved(await root(store, "p4")).bot_id == 1
    assert reserved(await child(store, "b1up", 9)).bot_id == 9  # its grids' children stay


async def test_backups_take_work_when_no_primary_is_active(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T03:00")
    await paced(store, 1, active_hours=("08:00-20:00",))
    await paced(store, 2)
    await paced(store, 9, tier=Tier.BACKUP)
    await store.set_state(2, AccountState.PAUSED)
    got = reserved(await root(store, "b1"))
    assert (got.bot_id, got.decision) == (9, "backup:no_active_primary")
    at(clock, "2025-06-15T08:00")
    assert reserved(await root(store, "p1")).bot_id == 1
    got = reserved(await root(store, "p2", Mode.RELAX, 0))
    assert (got.bot_id, got.decision) == (1, "routed")


async def test_a_primary_at_its_cap_holds_work_rather_than_waking_backups(
    store: PoolStore,
) -> None:
    await paced(store, 1, fast_cap=1)
    await paced(store, 9, tier=Tier.BACKUP)
    reserved(await root(store, "p1"))
    assert staged(await root(store, "p2")).reason == "paced:daily_cap"


async def test_a_used_up_plan_holds_the_account_until_the_tick_plans_again(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T10:00")
    await paced(store, 1, active_hours=("08:00-20:00",))
    at(clock, "2025-06-17T10:00")  # two edges passed without a tick
    assert staged(await root(store, "r1")).reason == "paced:outside_hours"
    assert (await store.tick()).paced == (1,)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r1"]


async def test_changing_the_profile_keeps_todays_counts(store: PoolStore) -> None:
    await paced(store, 1, fast_cap=1)
    reserved(await root(store, "r1"))
    assert staged(await root(store, "r2")).reason == "paced:daily_cap"
    await paced(store, 1, fast_cap=2)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r2"]
    await add(store, 1, Plan.PRO)  # no profile: no caps, no counts
    assert (await status(store, 1)).pace is None
    reserved(await root(store, "r3"))


async def test_tag_limited_keys_follow_pacing(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-06-15T03:00")
    await add(store, 1, Plan.PRO, tags=("eu",), pacing=Pacing(active_hours=("08:00-20:00",)))
    await add(store, 2, Plan.PRO, tags=("us",))
    assert staged(await root(store, "r1", tags=["eu"])).reason == "paced:outside_hours"
    assert staged(await root(store, "r2", Mode.RELAX, 0, tags=["eu"])).reason == (
        "paced:outside_hours"
    )
    at(clock, "2025-06-15T08:00")
    assert reserved(await root(store, "r3", tags=["eu"])).bot_id == 1


async def test_a_pool_kept_before_pacing_needs_no_new_totals(
    store: PoolStore, catalog: Catalog
) -> None:
    """Pacing's totals count only what pacing brings (backups, held accounts): an unpaced
    pool writes none, so totals kept by an older version are right as they are."""
    await add(store, 1, Plan.STANDARD, relax_slots=1)
    reserved(await root(store, "r1", Mode.RELAX, 0))
    assert staged(await root(store, "r2", Mode.RELAX, 0)).reason == "relax_slots_busy"
    totals = await store.redis.hgetall(store.keys.pool_totals())
    legacy = {b"fl", b"fc", b"fu", b"rc", b"ru", b"rcap"}  # the totals before pacing
    assert {name for name in totals if not name.startswith(b"n|")} <= legacy
    assert (await catalog.pool_snapshot()).eligible_now == 1


async def test_eligible_now_counts_out_an_account_capped_on_every_class_it_can_run(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    """A Basic plan at its fast cap has no relax to run, and neither does an account whose
    setting is relax have fast work: one cap holds each of them all day. A Pro account at its
    fast cap still takes relax work, and stays eligible."""
    at(clock, "2025-06-15T10:00")
    await paced(store, 1, Plan.BASIC, fast_cap=1)
    await paced(store, 2, Plan.PRO, fast_cap=1)
    await add(store, 3, Plan.PRO, setting=Setting.RELAX, pacing=Pacing(relax_cap=1))
    assert (await catalog.pool_snapshot()).eligible_now == 3
    reserved(await root(store, "r1", pin=1))
    reserved(await root(store, "r2", pin=2))
    reserved(await root(store, "r3", Mode.RELAX, 0, pin=3))
    snapshot = await catalog.pool_snapshot(per_account=True)
    assert snapshot.eligible_now == 1  # only 2: it runs relax
    accounts = await catalog.list_accounts()
    assert snapshot == helpers.totals_from_accounts(accounts, await store.staged_count())
    at(clock, "2025-06-16T00:00")  # local midnight: the caps reset
    await store.tick()
    assert (await catalog.pool_snapshot()).eligible_now == 3


async def test_an_older_versions_capped_entry_stops_counting_at_its_time(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    """`ix:capo` is counted from now: an entry an older version left (it doesn't know the
    index, and took the account out of it without a word) stops counting when its time (the
    account's next pacing change then) has passed."""
    at(clock, "2025-06-15T10:00")
    await paced(store, 1, Plan.PRO)
    capo = store.keys.index("capo")
    await store.redis.zadd(capo, {"1": ms("2025-06-15T11:00")})
    assert (await catalog.pool_snapshot()).eligible_now == 0
    at(clock, "2025-06-15T11:00")
    assert (await catalog.pool_snapshot()).eligible_now == 1


async def test_a_staged_fast_task_names_the_rule_of_the_account_that_frees_first(
    store: PoolStore, clock: FakeClock
) -> None:
    """Both accounts with the fast time are held: 1 (the most fast time) is outside its hours
    for ten more hours, 2 is in a gap for a minute. The task waits for 2's gap, and says so."""
    at(clock, "2025-06-15T10:00")
    hours = Pacing(active_hours=("20:00-23:00",))
    await add(store, 1, Plan.PRO, fast_seconds_left=90_000, pacing=hours)
    await add(store, 2, Plan.PRO, fast_seconds_left=3_600, pacing=Pacing(min_gap_seconds=60))
    assert reserved(await root(store, "r1")).bot_id == 2
    assert staged(await root(store, "r2")).reason == "paced:gap"
    clock.advance(60)
    assert [r.bot_id for r in await store.dispatch_staged(10, 60)] == [2]


async def test_one_tick_opens_many_windows_at_once(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T07:59")
    for bot_id in range(1, 251):
        await paced(store, bot_id, active_hours=("08:00-20:00",))
    at(clock, "2025-06-15T08:00")
    assert len((await store.tick()).paced) == 250  # in bounded scripts, not one per tick
    assert (await catalog.pool_snapshot()).eligible_now == 250


async def test_pinned_tasks_are_root_tasks_to_pacing(store: PoolStore, clock: FakeClock) -> None:
    at(clock, "2025-06-15T11:59")
    await paced(
        store, 1, active_hours=("08:00-20:00",), actions_only_hours=("12:00-13:00",), fast_cap=2
    )
    assert reserved(await root(store, "p1", pin=1)).decision == "pinned"
    at(clock, "2025-06-15T12:00")
    assert staged(await root(store, "p2", pin=1)).reason == "paced:actions_only"
    at(clock, "2025-06-15T13:00")
    await store.tick()  # the look-ahead is used up: the tick plans again
    got = await store.dispatch_staged(10, 60)
    assert [(r.task_id, r.decision) for r in got if isinstance(r, Reservation)] == [
        ("p2", "pinned")
    ]
    assert staged(await root(store, "p3", pin=1)).reason == "paced:daily_cap"
    assert (await status(store, 1)).pace.fast_today == 2  # type: ignore[union-attr]
