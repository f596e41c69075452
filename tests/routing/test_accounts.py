"""Account definitions and live figures: apply semantics, states, fast time, removal."""

from __future__ import annotations

import pytest

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.errors import AccountBusyError, AccountNotFoundError
from routing.model import PLANS, AccountState, Mode, Plan, Setting
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing.helpers import add, reserved, root, staged

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def test_apply_creates_updates_and_leaves_unchanged(
    store: PoolStore, catalog: Catalog
) -> None:
    spec = AccountSpec(bot_id=1, name="a", plan=Plan.PRO, tags=("eu",))
    assert await catalog.apply_account(spec) == "created"
    assert await catalog.apply_account(spec) == "unchanged"
    renamed = AccountSpec(bot_id=1, name="b", plan=Plan.PRO, tags=("eu", "x"), weight=3)
    assert await catalog.apply_account_diff(renamed) == ("updated", ("name", "weight", "tags"))
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.name, account.tags, account.weight) == ("b", ("eu", "x"), 3)
    assert account.fast_seconds_left == PLANS[Plan.PRO].fast_seconds_per_month
    assert (account.fast_slots, account.relax_slots) == (12, 3)


async def test_apply_keeps_live_figures(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    reserved(await root(store, "t1"))
    reserved(await root(store, "r1", Mode.RELAX, 0))
    await add(store, 1, Plan.PRO, fast_seconds_left=600, name="renamed")
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_seconds_reserved) == (540, 60)
    assert (account.fast_in_flight, account.relax_in_flight) == (1, 1)


async def test_an_unchanged_declared_fast_time_restores_nothing(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    reserved(await root(store, "t1"))
    await store.settle("t1", Outcome.COMPLETED)
    assert await catalog.apply_account(AccountSpec(1, plan=Plan.PRO, fast_seconds_left=600)) == (
        "unchanged"
    )
    account = await catalog.get_account(1)
    assert account is not None and account.fast_seconds_left == 540


async def test_a_changed_declared_fast_time_is_applied(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    reserved(await root(store, "t1"))  # 60 reserved, in flight
    action = await catalog.apply_account_diff(AccountSpec(1, plan=Plan.PRO, fast_seconds_left=900))
    assert action == ("updated", ("fast_seconds_left",))
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_seconds_reserved) == (840, 60)
    assert account.declared_fast_seconds == 900


async def test_declared_setting_and_state_apply_only_when_changed(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO)
    await store.set_state(1, AccountState.PAUSED, reason="captcha")
    await add(store, 1, Plan.PRO)  # the same file again: the pause stands
    account = await catalog.get_account(1)
    assert account is not None and account.state is AccountState.PAUSED
    await add(store, 1, Plan.PRO, state=AccountState.DRAINING, setting=Setting.RELAX)
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.state, account.state_reason) == (AccountState.DRAINING, "pool_file")
    assert (account.setting, account.declared_setting) == (Setting.RELAX, Setting.RELAX)


async def test_slot_changes_take_effect_at_once(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.STANDARD)
    for n in range(3):
        reserved(await root(store, f"t{n}"))
    await add(store, 1, Plan.STANDARD, fast_slots=2)  # 3 in flight above 2 slots: no new work
    account = await catalog.get_account(1)
    assert account is not None and (account.fast_in_flight, account.fast_slots) == (3, 2)
    staged(await root(store, "t3"))
    await store.settle("t0", Outcome.COMPLETED)
    assert await store.dispatch_staged(32, 60) == []
    await add(store, 1, Plan.STANDARD, fast_slots=5)
    assert [r.task_id for r in await store.dispatch_staged(32, 60)] == ["t3"]
    reserved(await root(store, "t4"))


async def test_set_fast_time_zero_switches_to_relax_and_more_restores(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.STANDARD)
    await store.set_fast_time(1, 0, reason="mj_bot_no_fasthour")
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.setting) == (0, Setting.RELAX)
    assert reserved(await root(store, "t1")).mode is Mode.RELAX
    await store.set_fast_time(1, 3600, reason="operator")
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.setting) == (3600, Setting.FAST)
    whats = [(h["what"], h["reason"]) for h in account.history]
    assert whats == [
        ("setting", "operator"),
        ("fast_time", "operator"),
        ("setting", "mj_bot_no_fasthour"),
        ("fast_time", "mj_bot_no_fasthour"),
    ]


async def test_set_fast_time_counts_what_is_in_flight(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.STANDARD)
    reserved(await root(store, "t1"))
    await store.set_fast_time(1, 1000)  # Midjourney hasn't charged t1 yet
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_seconds_reserved) == (940, 60)


async def test_state_changes_are_validated(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.PRO)
    with pytest.raises(ValueError, match="deadline"):
        await store.set_state(1, AccountState.COOLING)
    with pytest.raises(ValueError, match="deadline"):
        await catalog.apply_account(AccountSpec(2, state=AccountState.COOLING))
    with pytest.raises(AccountNotFoundError):
        await store.set_state(9, AccountState.PAUSED)
    with pytest.raises(AccountNotFoundError):
        await store.set_fast_time(9, 10)
    status = await Catalog(store).set_state(1, AccountState.DISABLED, until=123.0, reason="expired")
    assert (status.state, status.state_until, status.state_reason) == (
        AccountState.DISABLED,
        None,
        "expired",
    )


async def test_remove_refuses_an_account_with_tasks_in_flight(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.PRO)
    reserved(await root(store, "t1"))
    with pytest.raises(AccountBusyError) as caught:
        await catalog.remove_account(1)
    assert (caught.value.bot_id, caught.value.in_flight) == (1, 1)
    await catalog.remove_account(1, force=True)
    assert await catalog.get_account(1) is None
    assert await catalog.list_accounts() == []
    with pytest.raises(AccountNotFoundError):
        await catalog.remove_account(1)


async def test_history_is_capped_and_newest_first(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.PRO)
    for n in range(60):
        await store.set_fast_time(1, 1000 + n, reason=f"r{n}")
    account = await catalog.get_account(1)
    assert account is not None and len(account.history) == 10
    newest = account.history[0]
    assert (newest["what"], newest["from"], newest["to"], newest["reason"]) == (
        "fast_time",
        1058,
        1059,
        "r59",
    )
    assert newest["at"] == pytest.approx(store.clock())


async def test_list_accounts_by_bot_id(store: PoolStore, catalog: Catalog) -> None:
    for bot_id in (30, 4, 100):
        await add(store, bot_id, Plan.STANDARD, name=f"n{bot_id}")
    assert [a.bot_id for a in await catalog.list_accounts()] == [4, 30, 100]
    assert await catalog.get_account(5) is None
