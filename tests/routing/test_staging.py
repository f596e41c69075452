"""Staged tasks: FIFO dispatch across replicas, per-client limit, cancel, timeout."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from routing.catalog import Catalog
from routing.errors import StagedLimitError
from routing.keys import Keys
from routing.model import AccountState, Mode, Plan
from routing.results import Dropped, Outcome
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, child, reserved, root, staged

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def test_staged_tasks_dispatch_first_in_first_out(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD)  # 3 fast slots
    for n in range(3):
        reserved(await root(store, f"t{n}"))
    for n in range(3):
        assert staged(await root(store, f"s{n}")).reason == "fast_slots_busy"
    assert await store.staged_count() == 3
    await store.settle("t0", Outcome.COMPLETED)
    [first] = await store.dispatch_staged(32, 60)
    assert (first.task_id, first.decision, first.staged) == ("s0", "routed", True)
    await store.settle("t1", Outcome.FAILED)
    await store.settle("t2", Outcome.CANCELLED)
    assert [r.task_id for r in await store.dispatch_staged(32, 60)] == ["s1", "s2"]
    assert await store.staged_count() == 0


async def test_dispatch_takes_later_tasks_that_can_run(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1, relax_slots=1)
    await add(store, 2, Plan.STANDARD, fast_slots=1, relax_slots=0)
    reserved(await root(store, "f1"))
    reserved(await root(store, "f2"))
    reserved(await root(store, "r1", Mode.RELAX, 0))
    staged(await child(store, "c1", 1))  # waits for account 1's fast slot
    staged(await root(store, "r2", Mode.RELAX, 0))  # waits for a relax slot
    await store.settle("r1", Outcome.COMPLETED)
    [got] = await store.dispatch_staged(32, 60)
    assert (got.task_id, got.mode) == ("r2", Mode.RELAX)
    assert await store.staged_count() == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [("disable", "account_disabled"), ("remove", "account_removed")],
)
async def test_a_staged_child_whose_parent_account_is_gone_is_dropped_at_once(
    store: PoolStore, catalog: Catalog, change: str, reason: str
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    await add(store, 2, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1"))  # account 1's only fast slot
    reserved(await root(store, "t2"))  # account 2's
    staged(await child(store, "c1", 1))  # waits for account 1
    staged(await root(store, "s1"))  # waits for any account
    if change == "disable":
        await store.set_state(1, AccountState.DISABLED, reason="banned")
    else:
        await store.settle("t1", Outcome.FAILED)
        await catalog.remove_account(1)
    assert await store.dispatch_staged(32, 60) == [Dropped("c1", 1, reason)]
    assert await store.staged_count() == 1  # the root task still waits, for account 2
    assert await store.dispatch_staged(32, 60) == []  # dropped once, to one caller
    await store.settle("t2", Outcome.COMPLETED)
    [got] = await store.dispatch_staged(32, 60)
    assert (got.task_id, got.bot_id) == ("s1", 2)


async def test_settle_hands_the_freed_slot_to_the_oldest_staged_task(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1"))
    staged(await root(store, "s1"))
    staged(await root(store, "s2"))
    settled = await store.settle("t1", Outcome.COMPLETED, dispatch=4, lease_seconds=60)
    assert settled is not None
    [got] = settled.dispatched  # one slot freed: one task, the oldest
    assert (got.task_id, got.bot_id, got.staged) == ("s1", 1, True)
    assert staged(await root(store, "t2")).reason == "fast_slots_busy"  # no overtaking
    assert [r.task_id for r in await store.dispatch_staged(32, 60)] == []
    assert await store.staged_count() == 2  # s2, then t2
    again = await store.settle("t1", Outcome.COMPLETED, dispatch=4, lease_seconds=60)
    assert again is None  # settled once; nothing dispatched twice


async def test_settle_without_dispatch_leaves_the_queue_alone(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1"))
    staged(await root(store, "s1"))
    settled = await store.settle("t1", Outcome.FAILED)
    assert settled is not None and settled.dispatched == ()
    assert [r.task_id for r in await store.dispatch_staged(32, 60)] == ["s1"]


async def test_a_paused_parent_account_keeps_its_staged_child(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1"))
    staged(await child(store, "c1", 1))
    await store.set_state(1, AccountState.PAUSED, reason="captcha")
    assert await store.dispatch_staged(32, 60) == []
    assert await store.staged_count() == 1


async def test_dispatch_decides_again_with_the_pool_as_it_is_now(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t1"))
    staged(await root(store, "s1"))
    await store.set_fast_time(1, 0, reason="no_fasthour")
    [got] = await store.dispatch_staged(32, 60)
    assert (got.task_id, got.mode, got.decision) == (
        "s1",
        Mode.RELAX,
        "fallback_relax:no_fast_hours",
    )


async def test_staged_limit_is_per_client(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t0"))
    staged(await root(store, "a1", client_id="a", staged_limit=2))
    staged(await root(store, "a2", client_id="a", staged_limit=2))
    with pytest.raises(StagedLimitError) as caught:
        await root(store, "a3", client_id="a", staged_limit=2)
    assert caught.value.limit == 2
    staged(await root(store, "b1", client_id="b", staged_limit=2))
    assert await store.cancel_staged("a1")
    staged(await root(store, "a3", client_id="a", staged_limit=2))
    assert await store.staged_count() == 3


async def test_cancel_removes_a_staged_task_once(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t0"))
    staged(await root(store, "s1"))
    assert await store.cancel_staged("s1") is True
    assert await store.cancel_staged("s1") is False
    assert await store.cancel_staged("t0") is False  # reserved, not staged
    await store.settle("t0", Outcome.COMPLETED)
    assert await store.dispatch_staged(32, 60) == []


async def test_staged_tasks_expire_at_their_deadline(store: PoolStore, clock: FakeClock) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t0"))
    staged(await root(store, "s1", staged_timeout=30))
    staged(await root(store, "s2", staged_timeout=90))
    clock.advance(31)
    await store.settle("t0", Outcome.COMPLETED)
    [got] = await store.dispatch_staged(32, 60)  # s1 is past its deadline: never dispatched
    assert got.task_id == "s2"
    result = await store.tick()
    assert result.expired_staged == ("s1",)
    assert await store.staged_count() == 0
    assert (await store.tick()).expired_staged == ()


async def test_each_staged_task_is_dispatched_once_across_replicas(
    redis_url: str, keys: Keys, clock: FakeClock
) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    stores = [PoolStore(client, keys, clock=clock) for client in clients]
    try:
        for bot_id in range(1, 5):
            await add(stores[0], bot_id, Plan.PRO, fast_slots=2)
        for n in range(8):
            reserved(await root(stores[0], f"t{n}"))
        for n in range(20):
            staged(await root(stores[0], f"s{n}"))
        for n in range(8):
            await stores[0].settle(f"t{n}", Outcome.COMPLETED)
        batches = await asyncio.gather(*(s.dispatch_staged(32, 60) for s in stores))
        dispatched = [r.task_id for batch in batches for r in batch]
        assert sorted(dispatched) == sorted(f"s{n}" for n in range(8))
        assert await stores[0].staged_count() == 12
    finally:
        for store in stores:
            await store.aclose()
        for client in clients:
            await client.aclose()


async def test_dispatch_respects_its_limit(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_slots=1)
    reserved(await root(store, "t0"))
    for n in range(3):
        staged(await root(store, f"s{n}"))
    await add(store, 1, Plan.PRO, fast_slots=5)  # slot changes take effect at once
    assert [r.task_id for r in await store.dispatch_staged(2, 60)] == ["s0", "s1"]
    assert [r.task_id for r in await store.dispatch_staged(2, 60)] == ["s2"]
