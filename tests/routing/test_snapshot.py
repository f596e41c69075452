"""Pool totals for metrics, kept up to date by the scripts, read in bounded round trips."""

from __future__ import annotations

from redis.asyncio import Redis

from routing.catalog import Catalog
from routing.keys import Keys
from routing.model import AccountState, Mode, Plan, Setting, SlotKind
from routing.pacing import Pacing, Tier
from routing.results import Outcome
from routing.snapshot import AccountFigures
from routing.store import PoolStore
from routing.upkeep import recount_fast
from tests.routing.helpers import FakeClock, add, reserved, root, staged, totals_from_accounts


async def test_snapshot_totals(store: PoolStore, catalog: Catalog, clock: FakeClock) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=1000)
    await add(store, 2, Plan.STANDARD, fast_seconds_left=0)
    await add(store, 3, Plan.BASIC, state=AccountState.PAUSED)
    reserved(await root(store, "f1"))
    reserved(await root(store, "r1", Mode.RELAX, 0))
    reserved(await root(store, "r2", Mode.RELAX, 0))
    snapshot = await catalog.pool_snapshot()
    assert snapshot.accounts == {
        (Plan.PRO, AccountState.ACTIVE, Setting.FAST): 1,
        (Plan.STANDARD, AccountState.ACTIVE, Setting.RELAX): 1,
        (Plan.BASIC, AccountState.PAUSED, Setting.FAST): 1,
    }
    assert snapshot.account_count == 3
    assert snapshot.fast_seconds_left == 940 + 11880
    assert snapshot.slot_capacity == {SlotKind.FAST: 15, SlotKind.RELAX: 6}  # active only
    assert snapshot.slots_in_use == {SlotKind.FAST: 1, SlotKind.RELAX: 2}
    assert (snapshot.relax_capable, snapshot.staged, snapshot.per_account) == (2, 0, ())


async def test_usable_fast_time_leaves_out_accounts_that_take_no_fast_work(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    """Paused, cooling, disabled and draining accounts' fast time (and a relax setting's) is
    in the total, not in what routing can spend; pacing's hold is shown apart."""
    await add(store, 1, Plan.PRO, fast_seconds_left=1000)
    await add(store, 2, Plan.PRO, fast_seconds_left=2000, state=AccountState.PAUSED)
    await add(store, 3, Plan.PRO, fast_seconds_left=4000, state=AccountState.DISABLED)
    await add(store, 4, Plan.PRO, fast_seconds_left=8000, state=AccountState.DRAINING)
    await add(store, 5, Plan.PRO, fast_seconds_left=16000)
    await store.set_state(5, AccountState.COOLING, until=clock() + 60)
    await add(store, 6, Plan.PRO, fast_seconds_left=32000, setting=Setting.RELAX)
    await add(store, 7, Plan.PRO, fast_seconds_left=64000, fast_slots=1,
              pacing=Pacing(tier=Tier.BACKUP))  # fmt: skip
    await add(store, 8, Plan.PRO, fast_seconds_left=128000, pacing=Pacing(fast_cap=0))
    reserved(await root(store, "f1", exclude=[1, 8]))  # on 7, the backup: its one slot busy
    snapshot = await catalog.pool_snapshot()
    assert snapshot.fast_seconds_left == 255000 - 60  # every account's, less 7's reserved
    assert snapshot.fast_seconds_usable == 1000 + 63940 + 128000  # 1, 7 (busy), 8 (capped)
    assert snapshot.fast_seconds_held == 128000  # 8: at its fast cap
    expected = totals_from_accounts(await catalog.list_accounts(), await store.staged_count())
    assert await catalog.pool_snapshot(per_account=True) == expected


async def test_fast_time_totals_kept_before_they_existed_are_counted_again_at_start(
    store: PoolStore, catalog: Catalog, redis: Redis, keys: Keys
) -> None:
    """A pool whose totals an older version kept has no `flx`/`flh`: every account's fast
    time would read as usable. The recount every start runs puts them right, O(1) after."""
    await add(store, 1, Plan.PRO, fast_seconds_left=1000)
    await add(store, 2, Plan.PRO, fast_seconds_left=2000, state=AccountState.PAUSED)
    await add(store, 3, Plan.PRO, fast_seconds_left=4000, pacing=Pacing(fast_cap=0))
    await redis.hdel(keys.pool_totals(), "flx", "flh")  # as an older version left them
    assert (await catalog.pool_snapshot()).fast_seconds_usable == 7000
    assert await recount_fast(store) == (5000, 4000)
    snapshot = await catalog.pool_snapshot()
    assert (snapshot.fast_seconds_usable, snapshot.fast_seconds_held) == (5000, 4000)
    assert await recount_fast(store) == (5000, 4000)  # the same again: nothing drifts


async def test_snapshot_per_account_figures(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 2, Plan.STANDARD, fast_slots=1, relax_slots=0, fast_seconds_left=600)
    await add(store, 10, Plan.STANDARD, fast_slots=0, relax_slots=1)
    reserved(await root(store, "f1"))
    reserved(await root(store, "r1", Mode.RELAX, 0))
    staged(await root(store, "f2"))
    snapshot = await catalog.pool_snapshot(per_account=True)
    assert snapshot.staged == 1
    active = AccountState.ACTIVE
    assert snapshot.per_account == (
        AccountFigures(2, 540, 1, 0, active),
        AccountFigures(10, 54000, 0, 1, active),
    )


async def test_running_totals_match_a_recount(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    for bot_id, plan in enumerate([Plan.BASIC, Plan.STANDARD, Plan.PRO, Plan.MEGA], start=1):
        await add(store, bot_id, plan, fast_seconds_left=120 * bot_id, renews_at=clock() + 50)
    for n in range(12):
        await root(store, f"f{n}", Mode.FAST if n % 3 else Mode.RELAX, 60)
    await store.set_state(2, AccountState.COOLING, until=clock() + 10)
    await store.set_state(3, AccountState.DRAINING)
    for n in range(0, 12, 2):
        await store.settle(f"f{n}", Outcome.COMPLETED if n % 4 else Outcome.FAILED)
    await store.set_fast_time(4, 0)
    await catalog.remove_account(1, force=True)
    clock.advance(60)
    await store.tick()
    await store.dispatch_staged(32, 60)
    snapshot = await catalog.pool_snapshot(per_account=True)
    expected = totals_from_accounts(await catalog.list_accounts(), await store.staged_count())
    assert snapshot == expected
