"""Maintenance: renewals, cooling wake-ups (staged timeouts are in test_staging)."""

from __future__ import annotations

import pytest

from routing.catalog import Catalog
from routing.model import PLANS, AccountState, Mode, Plan, Setting
from routing.results import Outcome
from routing.store import PoolStore
from routing.upkeep import RENEWAL_PERIOD_SECONDS
from tests.routing.helpers import FakeClock, add, reserved, root

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster

MONTHLY = PLANS[Plan.STANDARD].fast_seconds_per_month


async def test_renewal_resets_fast_time_and_restores_the_setting(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    renews = clock() + 10
    await add(store, 1, Plan.STANDARD, fast_seconds_left=60, renews_at=renews)
    reserved(await root(store, "t1"))
    await store.settle("t1", Outcome.COMPLETED)  # no fast time left: setting relax
    assert (await store.tick()).renewed == ()
    clock.advance(11)
    assert (await store.tick()).renewed == (1,)
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.setting) == (MONTHLY, Setting.FAST)
    assert account.renews_at == renews + RENEWAL_PERIOD_SECONDS
    assert account.declared_renews_at == renews
    assert [(h["what"], h["reason"]) for h in account.history[:2]] == [
        ("setting", "renewal"),
        ("fast_time", "renewal"),
    ]
    assert (await store.tick()).renewed == ()
    assert reserved(await root(store, "t2")).mode is Mode.FAST


async def test_renewal_counts_what_tasks_in_flight_reserved(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=600, renews_at=clock() + 1)
    reserved(await root(store, "t1", Mode.TURBO, 120))
    clock.advance(2)
    await store.tick()
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.fast_seconds_left, account.fast_seconds_reserved) == (MONTHLY - 120, 120)


async def test_an_overdue_renewal_moves_past_now_at_once(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    start = clock()
    await add(store, 1, Plan.STANDARD, renews_at=start - 100 * 86400)
    assert (await store.tick()).renewed == (1,)
    account = await catalog.get_account(1)
    assert account is not None and account.renews_at is not None
    assert start < account.renews_at <= start + RENEWAL_PERIOD_SECONDS
    assert (await store.tick()).renewed == ()


async def test_cooling_accounts_wake_up_at_their_deadline(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    await add(store, 2, Plan.STANDARD, fast_seconds_left=0)
    status = await Catalog(store).set_state(
        1, AccountState.COOLING, until=clock() + 60, reason="banned"
    )
    assert (status.state, status.state_reason) == (AccountState.COOLING, "banned")
    assert status.state_until == clock() + 60
    assert reserved(await root(store, "t1")).bot_id == 2  # relax fallback, 1 is cooling
    clock.advance(59)
    assert (await store.tick()).woken == ()
    clock.advance(2)
    assert (await store.tick()).woken == (1,)
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.state, account.state_until) == (AccountState.ACTIVE, None)
    assert account.history[0]["reason"] == "cooldown_ended"
    got = reserved(await root(store, "t2"))
    assert (got.bot_id, got.mode) == (1, Mode.FAST)


async def test_a_cooled_account_set_active_early_is_not_woken_again(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    await store.set_state(1, AccountState.COOLING, until=clock() + 60)
    await store.set_state(1, AccountState.PAUSED, reason="captcha")
    clock.advance(61)
    assert (await store.tick()).woken == ()
    account = await catalog.get_account(1)
    assert account is not None and account.state is AccountState.PAUSED
