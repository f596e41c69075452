"""Pool strategies pick among eligible accounts as documented (docs/routing.md, 'Strategy
scores')."""

from __future__ import annotations

from collections import Counter

from routing.catalog import Catalog
from routing.model import Mode, Plan, Strategy
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root


async def test_the_default_strategy_is_least_busy(store: PoolStore, catalog: Catalog) -> None:
    assert await catalog.get_strategy() is Strategy.LEAST_BUSY
    await catalog.set_strategy(Strategy.WEIGHTED)
    assert await catalog.get_strategy() is Strategy.WEIGHTED


async def test_least_busy_takes_the_lowest_share_of_slots_in_use(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=10_000)  # 12 slots
    await add(store, 2, Plan.STANDARD, fast_seconds_left=50_000)  # 3 slots, more fast time
    picks = [reserved(await root(store, f"t{n}")).bot_id for n in range(6)]
    # 0/12 vs 0/3: tie, more fast time wins (2); then 0/12 < 1/3 (1); 1/12 < 1/3 (1); ...
    assert picks == [2, 1, 1, 1, 1, 2]


async def test_least_busy_ties_go_to_the_most_fast_time(store: PoolStore) -> None:
    for bot_id, left in ((1, 5_000), (2, 9_000), (3, 7_000)):
        await add(store, bot_id, Plan.PRO, fast_seconds_left=left)
    assert reserved(await root(store, "t1")).bot_id == 2
    assert reserved(await root(store, "t2")).bot_id == 3


async def test_most_fast_left_ignores_load(store: PoolStore, catalog: Catalog) -> None:
    await catalog.set_strategy(Strategy.MOST_FAST_LEFT)
    await add(store, 1, Plan.PRO, fast_seconds_left=10_000)
    await add(store, 2, Plan.PRO, fast_seconds_left=9_000)
    picks = [reserved(await root(store, f"t{n}")).bot_id for n in range(5)]
    assert picks == [1] * 5  # 10_000 - 4*60 is still more than 9_000


async def test_weighted_spreads_load_by_weight(store: PoolStore, catalog: Catalog) -> None:
    await catalog.set_strategy(Strategy.WEIGHTED)
    await add(store, 1, Plan.PRO, weight=3, fast_seconds_left=100_000)
    await add(store, 2, Plan.PRO, weight=1, fast_seconds_left=50_000)
    picks = [reserved(await root(store, f"t{n}")).bot_id for n in range(8)]
    assert Counter(picks) == {1: 6, 2: 2}


async def test_relax_work_goes_to_the_least_busy_relax_slots(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, relax_slots=6)
    await add(store, 2, Plan.PRO, relax_slots=2)
    picks = [reserved(await root(store, f"r{n}", Mode.RELAX, 0)).bot_id for n in range(4)]
    assert picks == [1, 2, 1, 1]  # 0/6 = 0/2: the lower id; 0/2 < 1/6; 1/6 < 1/2; 2/6 < 1/2


async def test_changing_strategy_rescores_accounts_already_indexed(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=100_000)
    await add(store, 2, Plan.PRO, fast_seconds_left=50_000)
    assert reserved(await root(store, "t1")).bot_id == 1  # least_busy: tie, more fast time
    assert reserved(await root(store, "t2")).bot_id == 2  # then the idle one
    await catalog.set_strategy(Strategy.MOST_FAST_LEFT)
    assert [reserved(await root(store, f"m{n}")).bot_id for n in range(3)] == [1, 1, 1]
