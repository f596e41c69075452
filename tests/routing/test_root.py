"""Root tasks (imagine, describe, blend): docs/routing.md's rules, one test per rule."""

from __future__ import annotations

import pytest

from routing.catalog import Catalog
from routing.errors import NoRelaxCapableAccountError
from routing.model import AccountState, Mode, Plan, Setting
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root, staged

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def test_fast_task_is_routed_and_takes_slot_and_fast_time(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    got = reserved(await root(store, "t1", Mode.FAST, 60))
    assert (got.bot_id, got.mode, got.cost, got.decision, got.staged) == (
        1,
        Mode.FAST,
        60,
        "routed",
        False,
    )
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_seconds_reserved) == (540, 60)
    assert (account.fast_in_flight, account.relax_in_flight) == (1, 0)


async def test_turbo_uses_a_fast_slot_and_reserves_the_doubled_cost(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    got = reserved(await root(store, "t1", Mode.TURBO, 120))  # the caller doubles the cost
    assert (got.mode, got.cost, got.decision) == (Mode.TURBO, 120, "routed")
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_in_flight) == (480, 1)


async def test_fast_falls_back_to_relax_when_no_account_has_fast_time(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=0)
    got = reserved(await root(store, "t1", Mode.FAST, 60))
    assert (got.bot_id, got.mode, got.cost) == (1, Mode.RELAX, 0)
    assert got.decision == "fallback_relax:no_fast_hours"


async def test_fast_time_below_the_cost_counts_as_none(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=30)
    got = reserved(await root(store, "t1", Mode.TURBO, 120))
    assert (got.mode, got.decision) == (Mode.RELAX, "fallback_relax:no_fast_hours")
    small = reserved(await root(store, "t2", Mode.FAST, 20))
    assert (small.mode, small.decision) == (Mode.FAST, "routed")


async def test_busy_fast_slots_stage_instead_of_falling_back(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)  # relax slots free
    reserved(await root(store, "t1"))
    result = staged(await root(store, "t2"))
    assert (result.reason, result.decision) == ("fast_slots_busy", "staged")
    assert await store.staged_count() == 1


async def test_relax_never_runs_on_basic(store: PoolStore) -> None:
    await add(store, 1, Plan.BASIC)
    await add(store, 2, Plan.STANDARD)
    for n in range(3):
        got = reserved(await root(store, f"r{n}", Mode.RELAX, 0))
        assert (got.bot_id, got.mode, got.cost, got.decision) == (2, Mode.RELAX, 0, "routed")
    assert staged(await root(store, "r3", Mode.RELAX, 0)).reason == "relax_slots_busy"


async def test_relax_without_a_non_basic_account_is_an_error(store: PoolStore) -> None:
    await add(store, 1, Plan.BASIC)
    await add(store, 2, Plan.STANDARD, state=AccountState.PAUSED)
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "r1", Mode.RELAX, 0)
    assert await store.staged_count() == 0


async def test_fallback_with_only_basic_accounts_is_an_error(store: PoolStore) -> None:
    await add(store, 1, Plan.BASIC, fast_seconds_left=0)
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t1", Mode.FAST, 60)


async def test_account_with_setting_relax_never_takes_fast_work(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO, setting=Setting.RELAX, fast_seconds_left=10_000)
    got = reserved(await root(store, "t1", Mode.FAST, 60))
    assert (got.bot_id, got.mode, got.decision) == (1, Mode.RELAX, "fallback_relax:no_fast_hours")
    account = await catalog.get_account(1)
    assert account is not None and account.fast_seconds_left == 10_000
    relax = reserved(await root(store, "r1", Mode.RELAX, 0))
    assert (relax.bot_id, relax.decision) == (1, "routed")  # relax qualifies either setting


async def test_only_active_accounts_take_root_work(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, state=AccountState.DRAINING)
    await add(store, 2, Plan.PRO, state=AccountState.PAUSED)
    await add(store, 3, Plan.PRO, state=AccountState.DISABLED)
    await add(store, 4, Plan.PRO)
    await store.set_state(4, AccountState.COOLING, until=store.clock() + 60)
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t1", Mode.FAST, 60)
    await add(store, 5, Plan.STANDARD)
    assert reserved(await root(store, "t2", Mode.FAST, 60)).bot_id == 5


async def test_excluded_accounts_are_skipped(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=9000)
    await add(store, 2, Plan.PRO, fast_seconds_left=3000)
    await add(store, 3, Plan.STANDARD, fast_seconds_left=0)
    assert reserved(await root(store, "a", exclude=[1])).bot_id == 2
    fallback = reserved(await root(store, "b", exclude=[1, 2]))
    assert (fallback.bot_id, fallback.decision) == (3, "fallback_relax:no_fast_hours")
    assert reserved(await root(store, "c", Mode.RELAX, 0, exclude=[3, 2])).bot_id == 1


async def test_excluding_every_relax_capable_account_is_an_error(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=0)
    with pytest.raises(NoRelaxCapableAccountError):
        await root(store, "t1", Mode.FAST, 60, exclude=[1])
    assert await store.staged_count() == 0


async def test_a_feasible_account_beyond_the_first_candidates_is_found(store: PoolStore) -> None:
    # Ten idle accounts rank first (least busy) but have too little fast time for the task;
    # the one with enough is busier, so it ranks last by strategy.
    for bot_id in range(1, 11):
        await add(store, bot_id, Plan.PRO, fast_seconds_left=30)
    await add(store, 99, Plan.PRO, fast_seconds_left=100_000)
    reserved(await root(store, "warm", Mode.FAST, 10, exclude=list(range(1, 11))))
    got = reserved(await root(store, "t1", Mode.FAST, 60))
    assert (got.bot_id, got.decision) == (99, "routed")


async def test_a_retried_call_returns_what_the_task_already_holds(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    first = reserved(await root(store, "t1"))
    assert await root(store, "t1") == first
    account = await catalog.get_account(1)
    assert account is not None and account.fast_in_flight == 1
    stage = staged(await root(store, "t2"))
    assert await root(store, "t2") == stage
    assert await store.staged_count() == 1
