"""Completion tracking: a finished task never keeps its slot, whatever clients do and whether
or not GoAPI's webhooks reach mjgate (the tracker over the shared schedule)."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.app import redis_client
from gateway.local.embedded import EmbeddedRedis
from gateway.settings import Settings
from routing.accounts import AccountSpec
from routing.keys import Keys
from routing.model import Plan
from tests.harness import Harness, harness

ONE = (AccountSpec(bot_id=7, name="one", plan=Plan.STANDARD, fast_slots=2, relax_slots=0),)


async def emulator_tasks(h: Harness) -> dict[str, dict[str, Any]]:
    rows = (await h.emulator.get("/_emulator/tasks")).json()["tasks"]
    return {row["task_id"]: row for row in rows}


async def settled_at(h: Harness, task_id: str) -> float:
    """When mjgate recorded the task's end (its terminal history event)."""
    record = await h.gate.records.load(task_id)
    assert record is not None and record.terminal, record
    return float(next(e["at"] for e in record.history if e["what"] in ("completed", "failed")))


async def wait_all_terminal(h: Harness, ids: list[str], timeout: float) -> None:
    """Wait reading mjgate's records only: no client GET (which could refresh a task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [await h.gate.records.load(task_id) for task_id in ids]
        if all(r is not None and r.terminal for r in records):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"not all terminal within {timeout} s: {[r and r.status for r in records]}"
    )


async def test_no_webhooks_no_polls_every_slot_is_free_within_the_interval(
    redis: Redis, prefix: str
) -> None:
    """The firewalled deployment: no public URL, clients that never poll. A burst of 8 on 2
    slots finishes, and each task's slot is freed within the tracking interval of its end."""
    interval = 0.3
    config = EmulatorConfig(pending_seconds=0.05, processing_seconds=0.25)
    settings = Settings(track_interval=interval, lease_seconds=120.0)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=settings
    ) as h:
        ids = [
            (await h.create(prompt=f"burst {n} --fast")).json()["data"]["task_id"] for n in range(8)
        ]
        await wait_all_terminal(h, ids, timeout=15)
        upstream = await emulator_tasks(h)
        records = {task_id: await h.gate.records.load(task_id) for task_id in ids}
        for task_id, record in records.items():
            assert record is not None and record.status == "completed"
            ended = upstream[record.upstream_id or ""]["ended_at"]
            dead = await settled_at(h, task_id) - ended
            assert -0.05 < dead < interval + 0.25, (task_id, dead)
        assert (await h.gate.catalog.get_account(7)).fast_in_flight == 0  # type: ignore[union-attr]


async def test_the_expected_end_is_learnt_from_finished_tasks(redis: Redis, prefix: str) -> None:
    config = EmulatorConfig(pending_seconds=0.1, processing_seconds=0.4)
    settings = Settings(track_interval=0.2)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=settings
    ) as h:
        first = (await h.create(prompt="learn --fast")).json()["data"]["task_id"]
        record = await h.gate.records.load(first)
        assert record is not None
        assert abs(record.expected_end - record.sent_at - 0.2) < 1e-6  # unlearnt: the interval
        for n in range(4):
            task_id = (await h.create(prompt=f"learn {n} --fast")).json()["data"]["task_id"]
            await wait_all_terminal(h, [task_id], timeout=5)
        key = h.gate.store.keys.durations("imagine", "fast")
        samples = [raw.split() for raw in await redis.lrange(key, 0, -1)]
        assert len(samples) >= 3, samples
        for low, high in samples:  # each bracket holds the emulator's 0.5 s
            assert int(low) / 1000 <= 0.55 and int(high) / 1000 >= 0.45, samples
        await asyncio.sleep(5.1)  # past the replica's cache of learnt durations
        task_id = (await h.create(prompt="learnt --fast")).json()["data"]["task_id"]
        record = await h.gate.records.load(task_id)
        assert record is not None
        assert 0.2 <= record.expected_end - record.sent_at <= 1.0
        plan = await h.gate.tasks.schedule.plan("imagine", "fast")
        assert abs(plan.first - (record.expected_end - record.sent_at)) < 1e-3
        assert plan.last >= 0.45


async def test_a_task_sent_before_anything_was_learnt_is_checked_by_what_is_learnt_later(
    redis: Redis, prefix: str
) -> None:
    """A burst's first tasks are sent with nothing learnt (probed at the interval, then
    doubling). Durations learnt while they run replace that: the check after the first one
    comes at the learnt expectation, not at the doubled probe (which cost a burst's second
    wave up to a whole probe of dead slot time)."""
    config = EmulatorConfig(pending_seconds=0.0, processing_seconds=2.0)
    settings = Settings(track_interval=0.25)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=settings
    ) as h:
        task_id = (await h.create(prompt="cold --fast")).json()["data"]["task_id"]
        record = await h.gate.records.load(task_id)
        assert record is not None
        assert record.expected_end - record.sent_at == 0.25  # nothing learnt: the interval
        for _ in range(3):  # other tasks finish meanwhile: about 1.6 to 2.0 s each
            await h.gate.tasks.schedule.learn("imagine", "fast", (1.6, 2.0))
        await wait_all_terminal(h, [task_id], timeout=10)
        gets = (await emulator_tasks(h))[record.upstream_id or ""]["gets"]
        after = [at - record.sent_at for at in gets]
        assert len(after) >= 2 and after[0] < 0.5, after  # the cold probe
        assert after[1] > 1.7, after  # the learnt middle, not the doubled probe (0.5 s) ...
        assert len(after) <= 3, after  # ... then the learnt range's end: no probe between


async def test_webhooks_push_the_next_check_later(redis: Redis, prefix: str) -> None:
    config = EmulatorConfig(pending_seconds=0.2, processing_seconds=2.0)
    settings = Settings(track_interval=0.2, track_webhook_grace=30.0)
    async with harness(redis, prefix, accounts=ONE, emulator_config=config, settings=settings) as h:
        task_id = (await h.create(prompt="hooks --fast")).json()["data"]["task_id"]
        record = await h.gate.records.load(task_id)
        assert record is not None
        key = h.gate.store.keys.check_schedule()
        assert record.expected_end - record.sent_at < 0.3  # unlearnt: soon, by polling
        await h.wait_status(task_id, "processing", timeout=5)  # its webhook arrived
        after = await redis.zscore(key, task_id)
        assert after is not None and after / 1000 >= record.expected_end + 29
        await h.wait_status(task_id, "completed", timeout=10)
        upstream = (await emulator_tasks(h))[record.upstream_id or ""]
        assert upstream["gets"] == []  # webhooks on: not one poll


async def test_a_webhook_refused_while_redis_was_down_still_settles(prefix: str) -> None:
    """GoAPI does not retry a refused webhook. Redis frozen when the task ends: mjgate answers
    503, keeps the news, and settles the task within the interval once Redis answers again,
    although its next check was pushed a minute away by earlier webhooks."""
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjt")))
    client = redis_client(Settings(redis_url=server.start(), redis_timeout=0.3))
    config = EmulatorConfig(pending_seconds=0.1, processing_seconds=1.0, webhook_retry_delays=())
    settings = Settings(track_interval=0.2, track_webhook_grace=60.0, redis_timeout=0.3)
    try:
        async with harness(
            client, prefix, accounts=ONE, emulator_config=config, settings=settings
        ) as h:
            task_id = (await h.create(prompt="outage --fast")).json()["data"]["task_id"]
            await h.wait_status(task_id, "processing", timeout=5)
            assert server._process is not None
            os.kill(server._process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(1.5)  # the task ends upstream; its webhook gets a 503
                log = (await h.emulator.get("/_emulator/webhooks")).json()
                statuses = [d.get("status") for d in _deliveries(log)]
                assert 503 in statuses, statuses
            finally:
                os.kill(server._process.pid, signal.SIGCONT)
            back = time.monotonic()
            await _wait_record(h, task_id, "completed", timeout=3)
            assert time.monotonic() - back < 0.2 + 0.5
            account = await h.gate.catalog.get_account(7)
            assert account is not None and account.fast_in_flight == 0
    finally:
        await client.aclose()
        server.stop()


def _deliveries(log: Any) -> list[dict[str, Any]]:
    rows = log["deliveries"]
    return [row for row in rows if isinstance(row, dict)]


async def _wait_record(h: Harness, task_id: str, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            record = await h.gate.records.load(task_id)
        except Exception:
            record = None
        if record is not None and record.status == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{task_id} not {status} within {timeout} s")


async def test_a_client_poll_refreshes_only_when_due(redis: Redis, prefix: str) -> None:
    """Polls before the expected end are served from the record: no upstream GET."""
    config = EmulatorConfig(pending_seconds=5.0, processing_seconds=5.0)
    settings = Settings(track_interval=1.0)
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=settings
    ) as h:
        task_id = (await h.create(prompt="poll --fast")).json()["data"]["task_id"]
        for _ in range(5):
            assert (await h.get(task_id)).json()["data"]["status"] == "pending"
            await asyncio.sleep(0.1)
        record = await h.gate.records.load(task_id)
        assert record is not None
        upstream = (await emulator_tasks(h))[record.upstream_id or ""]
        assert upstream["gets"] == []  # five polls in 0.5 s, none due
        await asyncio.sleep(1.0)
        await h.get(task_id)
        await h.get(task_id)
        gets = (await emulator_tasks(h))[record.upstream_id or ""]["gets"]
        assert len(gets) == 1  # due once: one GET, the tracker's or the poll's


async def test_a_poll_while_the_upstream_hangs_answers_the_record(
    redis: Redis, prefix: str
) -> None:
    config = EmulatorConfig(pending_seconds=5.0, processing_seconds=5.0)
    settings = Settings(track_interval=30, poll_refresh_timeout=0.3)  # the tracker stays away
    async with harness(
        redis, prefix, accounts=ONE, webhooks=False, emulator_config=config, settings=settings
    ) as h:
        task_id = (await h.create(prompt="hang --fast")).json()["data"]["task_id"]
        hang = asyncio.Event()

        original = h.faulty.inner

        class Hanging(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.method == "GET":
                    await hang.wait()
                return await original.handle_async_request(request)

        h.faulty.inner = Hanging()
        await asyncio.sleep(0.3)
        # the task is due, so the client's GET refreshes it (written straight to Redis: the
        # tracker is not woken and does not take the check first)
        await redis.zadd(Keys(prefix).check_schedule(), {task_id: int(time.time() * 1000)})
        started = time.monotonic()
        answer = await h.get(task_id)
        waited = time.monotonic() - started
        assert answer.status_code == 200 and answer.json()["data"]["status"] == "pending"
        assert 0.3 <= waited < 1.0  # the refresh bound, not the upstream timeout
        # the stored record, with its age: no news since the create's answer
        assert float(answer.headers["x-mjgate-record-age"]) >= 0.5
        hang.set()
        h.faulty.inner = original


async def test_the_loops_stop_even_when_stopped_mid_pass(redis: Redis, prefix: str) -> None:
    """A shutdown right after start (the loops in their first pass, events being set) ends
    within seconds: no loop swallows its cancellation."""
    from gateway.app import create_app

    for n in range(10):
        app = create_app(Settings(redis_prefix=f"{prefix}:{n}", reconcile_interval=0.01))
        async with app.router.lifespan_context(app):
            app.state.mjgate.tasks.handoff.dispatch_soon()
            app.state.mjgate.outbox.wake.set()
            await asyncio.sleep(0.005 * n)
            stopping = time.monotonic()
        # measured before: one shutdown in four waited for a lost cancellation forever
        assert time.monotonic() - stopping < 3.0


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() -> None:
    """A background loop meeting Redis down (redis-py's errors too: the outbox's client) logs
    the outage once, not once a pass, and its end once."""
    import logging

    from redis.exceptions import ConnectionError as RedisConnectionError

    from gateway.logs import LOGGER
    from gateway.tasks.loops import Loops
    from routing.errors import StoreError

    events: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(record.getMessage())

    passes = iter(
        [RedisConnectionError("down"), StoreError("tick", "down"), RedisConnectionError("down")]
    )

    async def work() -> None:
        failure = next(passes, None)
        if failure is not None:
            raise failure

    async def no_wait() -> None:
        await asyncio.sleep(0)

    loops = object.__new__(Loops)
    loops._outage = set()
    handler = Collect()
    LOGGER.addHandler(handler)
    try:
        task = asyncio.create_task(loops._loop("deliver", work, no_wait))
        await asyncio.sleep(0.05)
        task.cancel()
    finally:
        LOGGER.removeHandler(handler)
    assert events.count("background_store_unavailable") == 1
    assert events.count("background_recovered") == 1
    assert "background_crash" not in events
