"""Weighted fair queueing of staged work: FIFO within a key, freed slots shared between keys
in proportion to their weights, a newly waiting key served within the documented bound."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from routing.keys import Keys
from routing.model import Mode, Plan
from routing.results import Outcome, Reservation
from routing.store import PoolStore
from tests.routing.helpers import add, child, reserved, root, staged


async def _run_in_turn(store: PoolStore, running: list[str], count: int) -> list[str]:
    """Settle the oldest running task `count` times, each handing its slot to staged work in
    the same script (as the gateway does); the task ids dispatched, in order."""
    order: list[str] = []
    for _ in range(count):
        settlement = await store.settle(running.pop(0), Outcome.COMPLETED, dispatch=1)
        assert settlement is not None
        for item in settlement.dispatched:
            assert isinstance(item, Reservation)
            order.append(item.task_id)
            running.append(item.task_id)
    return order


async def test_a_key_arriving_behind_500_tasks_is_served_within_the_bound(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=2, fast_seconds_left=10**7)
    running = [reserved(await root(store, f"x{n}", client_id="x")).task_id for n in range(2)]
    for n in range(500):
        staged(await root(store, f"a{n:03d}", client_id="a", staged_limit=1000))
    first = await _run_in_turn(store, running, 10)
    assert first == [f"a{n:03d}" for n in range(10)]  # FIFO within a key
    for n in range(20):
        staged(await root(store, f"b{n:02d}", client_id="b", staged_limit=1000))
    after = await _run_in_turn(store, running, 40)  # the bound: 2 x 20 with one other key
    assert [t for t in after if t.startswith("b")] == [f"b{n:02d}" for n in range(20)]
    assert [t for t in after if t.startswith("a")] == [f"a{n:03d}" for n in range(10, 30)]
    assert await store.staged_count() == 500 - 30


async def test_weights_three_to_one_share_dispatches_three_to_one(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=3, fast_seconds_left=10**7)
    running = [reserved(await root(store, f"x{n}", client_id="x")).task_id for n in range(3)]
    for n in range(100):
        staged(await root(store, f"a{n:03d}", client_id="a", staged_limit=200, weight=3))
        staged(await root(store, f"b{n:03d}", client_id="b", staged_limit=200, weight=1))
    order = await _run_in_turn(store, running, 80)
    assert Counter(t[0] for t in order) == {"a": 60, "b": 20}
    for start in range(0, 80, 8):  # and steadily so, not in bursts
        window = Counter(t[0] for t in order[start : start + 8])
        assert window == {"a": 6, "b": 2}, (start, order[start : start + 8])


async def test_a_key_whose_head_cant_run_keeps_its_place(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1, relax_slots=0, fast_seconds_left=10**6)
    await add(store, 2, Plan.STANDARD, fast_slots=1, relax_slots=0, fast_seconds_left=10**6)
    held = {}
    for task in ("p1", "p2"):
        got = reserved(await root(store, task, client_id="x"))
        held[got.bot_id] = task
    staged(await child(store, "a-child", 1, client_id="a"))  # only account 1 will do
    for n in range(3):
        staged(await root(store, f"b{n}", client_id="b"))
    # account 2 frees: a's head can't use it, b's can; a keeps its (earlier) turn
    freed = await store.settle(held[2], Outcome.COMPLETED, dispatch=1)
    assert freed is not None and [r.task_id for r in freed.dispatched] == ["b0"]
    freed = await store.settle(held[1], Outcome.COMPLETED, dispatch=1)
    assert freed is not None and [r.task_id for r in freed.dispatched] == ["a-child"]


async def test_an_idle_key_earns_no_credit(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1, fast_seconds_left=10**7)
    running = [reserved(await root(store, "x0", client_id="x")).task_id]
    for n in range(30):
        staged(await root(store, f"a{n:02d}", client_id="a"))
    await _run_in_turn(store, running, 20)  # b was idle all along
    for n in range(4):
        staged(await root(store, f"b{n}", client_id="b"))
    order = await _run_in_turn(store, running, 8)
    # b starts at the virtual time, just ahead of a's next turn, then they alternate: no
    # burst of b's for the time it was idle
    assert "".join(t[0] for t in order) == "babababa"


async def test_relax_and_fast_work_of_two_keys(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1, relax_slots=1, fast_seconds_left=10**6)
    reserved(await root(store, "f0", client_id="x"))
    reserved(await root(store, "r0", Mode.RELAX, 0, client_id="x"))
    staged(await root(store, "a-fast", client_id="a"))
    staged(await root(store, "b-relax", Mode.RELAX, 0, client_id="b"))
    freed = await store.settle("r0", Outcome.COMPLETED, dispatch=1)  # a relax slot
    assert freed is not None and [r.task_id for r in freed.dispatched] == ["b-relax"]


async def test_tasks_staged_by_the_previous_version_are_adopted(
    store: PoolStore, redis: Redis, keys: Keys
) -> None:
    """A rolling upgrade: a replica without per-key queues staged a task the way it did (the
    global queue, its entry, its deadline, the client's count); the dispatcher adopts it."""
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    reserved(await root(store, "t0"))
    staged(await root(store, "new", client_id="b"))
    task, deadline = "legacy", int((store.clock() + 300) * 1000)
    await redis.zadd(keys.staged_queue(), {task: 0})  # older than anything staged since
    await redis.zadd(keys.staged_deadlines(), {task: deadline})
    await redis.hset(keys.staged_entry(task), mapping={
        "r": "fast_slots_busy", "cl": "a", "dl": deadline, "k": "root", "m": "fast",
        "c": 60, "x": "", "ls": 60000, "t": ""})  # fmt: skip
    await redis.hincrby(keys.staged_per_client(), "a", 1)
    assert await store.staged_count() == 2
    await store.settle("t0", Outcome.COMPLETED)
    [first] = await store.dispatch_staged(1, 60)
    assert isinstance(first, Reservation) and first.task_id == "legacy"  # joins at the same tag
    await store.settle("legacy", Outcome.COMPLETED)
    [second] = await store.dispatch_staged(1, 60)
    assert isinstance(second, Reservation) and second.task_id == "new"
    assert await store.staged_count() == 0
