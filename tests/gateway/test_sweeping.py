"""The sweep (gateway.tasks.sweeping): an open task whose reservation, queue entry or planned
check a failover lost is tracked again or ended, never left pending; a healthy one is left
alone. The losses are made by deleting exactly what an asynchronous replica can lose."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.keys.client import key_id
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord, TaskStatus
from routing.accounts import AccountSpec
from routing.keys import Keys
from routing.model import Plan
from tests.harness import CLIENT_KEY, Harness, harness

ONE = (AccountSpec(bot_id=7, name="one", plan=Plan.PRO, fast_slots=1, relax_slots=1),)
GRACE = 1.0  # twice the lease below
SETTINGS = Settings(
    lease_seconds=GRACE / 2,
    sweep_interval=3600.0,  # the background pass runs once at start; the tests sweep by hand
    upstream_timeout=0.2,
    upstream_connect_timeout=0.1,
)


async def sweep(h: Harness, redis: Redis, keys: Keys) -> int:
    await redis.delete(keys.sweep_lock())  # the start's pass holds it for the interval
    return await h.gate.tasks.sweeper.sweep()


async def wait_status(h: Harness, task_id: str, status: str, timeout: float) -> TaskRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = await h.gate.records.load(task_id)
        assert record is not None
        if record.status == status or time.monotonic() > deadline:
            return record
        await asyncio.sleep(0.05)


async def test_a_sent_task_that_lost_its_reservation_map_and_check_is_tracked_again(
    redis: Redis, prefix: str, keys: Keys
) -> None:
    config = EmulatorConfig(pending_seconds=0.1, processing_seconds=2.0)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=SETTINGS
    ) as h:
        lost = (await h.create(prompt="lost --fast")).json()["data"]["task_id"]
        healthy = (await h.create(prompt="healthy --relax")).json()["data"]["task_id"]
        record = await wait_status(h, lost, "pending", 2)
        upstream_id = record.upstream_id
        assert upstream_id is not None
        # what the failover took: the reservation, the upstream-id map, the planned check
        await redis.delete(keys.reservation(lost), keys.upstream_task(upstream_id))
        await redis.zrem(keys.leases(), lost)
        await redis.zrem(keys.check_schedule(), lost)
        await asyncio.sleep(GRACE + 0.3)
        assert await sweep(h, redis, keys) == 1  # the healthy one is held: left alone
        assert await redis.get(keys.upstream_task(upstream_id)) == lost.encode()
        running = await h.gate.records.load(lost)
        assert running is not None and running.status == "processing"  # checked: running
        assert (await wait_status(h, healthy, "completed", 6)).status == "completed"
        await asyncio.sleep(GRACE + 0.3)  # the check's news is older than `grace` again
        assert await sweep(h, redis, keys) == 1  # checked again: it ended upstream
        assert (await wait_status(h, lost, "completed", 1)).status == "completed"
        assert await sweep(h, redis, keys) == 0  # ended: out of the open index
        assert await redis.zcard(keys.open_tasks(key_id(CLIENT_KEY))) == 0


async def test_a_staged_task_that_lost_its_queue_entry_fails_as_task_lost(
    redis: Redis, prefix: str, keys: Keys
) -> None:
    config = EmulatorConfig(pending_seconds=0.1, processing_seconds=5.0)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=SETTINGS
    ) as h:
        await h.create(prompt="running --fast")
        staged = (await h.create(prompt="waits --fast")).json()["data"]["task_id"]
        assert (await wait_status(h, staged, "staged", 1)).status == "staged"
        assert await h.gate.store.cancel_staged(staged)  # its queue entry gone, record kept
        await asyncio.sleep(GRACE + 0.3)
        assert await sweep(h, redis, keys) == 1
        answer = (await h.get(staged)).json()["data"]
        assert answer["status"] == "failed"
        record = await h.gate.records.load(staged)
        assert record is not None and record.error_type == "task_lost"


async def open_record(h: Harness, task_id: str, age: float) -> TaskRecord:
    """A reserved task's record `age` seconds old, in its client's open tasks, held by
    nothing (no reservation, no staged entry)."""
    at = time.time() - age
    record = TaskRecord(task_id, key_id(CLIENT_KEY), "imagine", TaskStatus.RESERVED, {},
                        created_at=at, updated_at=at)  # fmt: skip
    await h.gate.records.save(record)
    await h.gate.records.opened(record)
    return record


async def test_a_task_never_sent_and_held_by_nothing_fails_as_outcome_unknown(
    redis: Redis, prefix: str, keys: Keys
) -> None:
    async with harness(redis, prefix, accounts=ONE, webhooks=False, settings=SETTINGS) as h:
        await open_record(h, "orphan-1", 10)
        await open_record(h, "fresh-1", 0)
        assert await sweep(h, redis, keys) == 1  # the fresh one may be a create in progress
        ended = await h.gate.records.load("orphan-1")
        assert ended is not None and ended.error_type == "upstream_outcome_unknown"
        kept = await h.gate.records.load("fresh-1")
        assert kept is not None and kept.status == TaskStatus.RESERVED


async def test_a_record_that_changed_meanwhile_is_not_ended(
    redis: Redis, prefix: str, keys: Keys
) -> None:
    """The sweep ends a task only if its record is still as it read it (compare-and-set)."""
    async with harness(redis, prefix, accounts=ONE, webhooks=False, settings=SETTINGS) as h:
        record = await open_record(h, "racing-1", 10)
        moved = record.evolve(status=TaskStatus.STAGED)
        await h.gate.records.save(moved)  # what the sweep will not have read
        assert not await h.gate.tasks.tracker.fail(
            record, "upstream_outcome_unknown", "x", only_if=TaskStatus.RESERVED
        )
        stored = await h.gate.records.load("racing-1")
        assert stored is not None and stored.status == TaskStatus.STAGED
