"""Root tasks pinned to one account (a key allowed to pin sent `input.bot_id`)."""

from __future__ import annotations

import pytest

from routing.errors import PinnedAccountUnavailableError
from routing.model import AccountState, Mode, Plan
from routing.results import Dropped, Outcome
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root, staged


async def test_a_task_pinned_to_a_busy_account_waits_for_it(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    await add(store, 2, Plan.STANDARD, fast_slots=3)
    assert reserved(await root(store, "t1", pin=1)).decision == "pinned"
    assert staged(await root(store, "t2", pin=1)).reason == "pinned_busy"  # 2 is free
    assert reserved(await root(store, "t3")).bot_id == 2  # unpinned work goes elsewhere
    assert await store.dispatch_staged(4, 60) == []
    freed = await store.settle("t1", Outcome.COMPLETED, dispatch=1)
    assert freed is not None
    [got] = freed.dispatched
    assert not isinstance(got, Dropped)
    assert (got.task_id, got.bot_id, got.decision) == ("t2", 1, "pinned")


@pytest.mark.parametrize(
    ("plan", "state", "mode", "reason"),
    [
        (Plan.BASIC, AccountState.ACTIVE, Mode.RELAX, "no_relax_on_basic"),
        (Plan.PRO, AccountState.DISABLED, Mode.FAST, "account_disabled"),
        (Plan.PRO, AccountState.DRAINING, Mode.FAST, "account_draining"),
    ],
)
async def test_a_task_pinned_to_an_account_that_can_never_run_it_is_refused(
    store: PoolStore, plan: Plan, state: AccountState, mode: Mode, reason: str
) -> None:
    await add(store, 1, plan, state=state)
    await add(store, 2, Plan.PRO)
    with pytest.raises(PinnedAccountUnavailableError) as refused:
        await root(store, "t1", mode, 0 if mode is Mode.RELAX else 60, pin=1)
    assert (refused.value.bot_id, refused.value.reason) == (1, reason)
    assert await store.staged_count() == 0


async def test_pinning_an_unknown_account_or_one_outside_the_keys_tags(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, tags=("eu",))
    await add(store, 2, Plan.PRO, tags=("us",))
    with pytest.raises(PinnedAccountUnavailableError) as refused:
        await root(store, "t1", pin=9)
    assert refused.value.reason == "account_removed"
    with pytest.raises(PinnedAccountUnavailableError) as refused:
        await root(store, "t2", pin=2, tags=("eu",))
    assert refused.value.reason == "outside_key_tags"
    assert reserved(await root(store, "t3", pin=1, tags=("eu",))).bot_id == 1


async def test_a_pinned_fast_task_on_an_account_without_fast_time_runs_relax(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=0)
    got = reserved(await root(store, "t1", pin=1))
    assert (got.mode, got.decision) == (Mode.RELAX, "pinned_relax:setting_relax")


async def test_a_staged_pinned_task_whose_account_is_disabled_is_dropped(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1", pin=1))
    staged(await root(store, "t2", pin=1))
    await store.set_state(1, AccountState.DISABLED)
    assert await store.dispatch_staged(4, 60) == [Dropped("t2", 1, "account_disabled")]
