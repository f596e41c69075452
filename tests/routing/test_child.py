"""Child tasks run on the parent's account, in the parent's mode unless it can't (docs/routing.md,
'Child tasks')."""

from __future__ import annotations

import pytest

from routing.errors import ParentAccountUnavailableError
from routing.model import AccountState, Mode, Plan, Setting
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing.helpers import add, child, reserved, staged

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


@pytest.mark.parametrize("mode", [Mode.FAST, Mode.TURBO, Mode.RELAX])
async def test_child_inherits_the_parents_account_and_mode(store: PoolStore, mode: Mode) -> None:
    await add(store, 1, Plan.PRO)
    await add(store, 2, Plan.PRO, fast_seconds_left=1_000_000)  # more attractive, unused
    cost = {Mode.FAST: 60, Mode.TURBO: 120, Mode.RELAX: 0}[mode]
    got = reserved(await child(store, "c1", 1, mode, cost))
    assert (got.bot_id, got.mode, got.cost, got.decision) == (1, mode, cost, "inherited")


async def test_setting_relax_runs_the_child_relax(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, setting=Setting.RELAX)
    got = reserved(await child(store, "c1", 1, Mode.FAST, 60))
    assert (got.mode, got.cost, got.decision) == (Mode.RELAX, 0, "inherited_relax:setting_relax")


async def test_too_little_fast_time_runs_the_child_relax(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=100)
    got = reserved(await child(store, "c1", 1, Mode.TURBO, 120))
    assert (got.mode, got.cost, got.decision) == (Mode.RELAX, 0, "inherited_relax:no_fast_time")
    crop = reserved(await child(store, "c2", 1, Mode.FAST, 0))  # an upscale crop costs nothing
    assert (crop.mode, crop.decision) == (Mode.FAST, "inherited")


async def test_basic_parent_cannot_run_a_child_relax(store: PoolStore) -> None:
    await add(store, 1, Plan.BASIC, fast_seconds_left=10)
    with pytest.raises(ParentAccountUnavailableError) as caught:
        await child(store, "c1", 1, Mode.FAST, 60)
    assert (caught.value.bot_id, caught.value.reason) == (1, "no_relax_on_basic")
    with pytest.raises(ParentAccountUnavailableError):
        await child(store, "c2", 1, Mode.RELAX, 0)


async def test_disabled_or_removed_parent_is_unavailable(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, state=AccountState.DISABLED)
    with pytest.raises(ParentAccountUnavailableError) as caught:
        await child(store, "c1", 1)
    assert caught.value.reason == "account_disabled"
    with pytest.raises(ParentAccountUnavailableError) as caught:
        await child(store, "c2", 7)
    assert (caught.value.bot_id, caught.value.reason) == (7, "account_removed")


@pytest.mark.parametrize("state", [AccountState.PAUSED, AccountState.COOLING])
async def test_paused_or_cooling_parent_stages(store: PoolStore, state: AccountState) -> None:
    await add(store, 1, Plan.PRO)
    await store.set_state(1, state, until=store.clock() + 60, reason="test")
    assert staged(await child(store, "c1", 1)).reason == "parent_paused"


async def test_draining_parent_still_takes_children(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, state=AccountState.DRAINING)
    assert reserved(await child(store, "c1", 1)).decision == "inherited"


async def test_busy_parent_stages_until_a_slot_frees(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    await add(store, 2, Plan.STANDARD)
    reserved(await child(store, "c1", 1))
    assert staged(await child(store, "c2", 1)).reason == "parent_busy"
    assert await store.dispatch_staged(32, 60) == []
    await store.settle("c1", Outcome.COMPLETED)
    [got] = await store.dispatch_staged(32, 60)
    assert (got.task_id, got.bot_id, got.decision, got.staged) == ("c2", 1, "inherited", True)
