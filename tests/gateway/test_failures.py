"""The README's error table, row by row: status, error.type, and that nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.app import redis_client
from gateway.local.embedded import EmbeddedRedis
from gateway.settings import Settings
from routing.accounts import AccountSpec
from routing.model import Plan
from routing.results import Outcome
from tests.harness import CLIENT_KEY, DEMO, SentThen, SentThenTimeout, harness


def error_type(response: httpx.Response) -> str:
    body = response.json()
    assert body["code"] == response.status_code and body["data"] is None
    assert isinstance(body["message"], str) and body["message"]
    value: str = body["error"]["type"]
    return value


async def in_flight(h: object, bot_id: int) -> int:
    account = await h.gate.catalog.get_account(bot_id)  # type: ignore[attr-defined]
    return int(account.in_flight)


async def test_invalid_json_unknown_type_bad_field(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        headers = {"x-api-key": CLIENT_KEY, "content-type": "application/json"}
        bad = await h.client.post("/api/v1/task", content=b"{nope", headers=headers)
        assert bad.status_code == 400 and error_type(bad) == "invalid_request"
        assert bad.json()["error"]["field"] == "body"
        unknown = await h.create("paint")
        assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "task_type"
        field = await h.create("upscale", origin_task_id="x", index="9")
        assert field.status_code == 400 and field.json()["error"]["field"] == "input.index"
        assert await h.received() == []
        for spec in DEMO:
            assert await in_flight(h, spec.bot_id) == 0


async def test_body_over_the_limit_is_413(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, settings=Settings(body_limit=1024)) as h:
        answer = await h.create(prompt="x" * 2000)
        assert answer.status_code == 413 and error_type(answer) == "body_too_large"

        async def chunks():  # no content-length: the read itself stops at the limit
            for _ in range(100):
                yield b"x" * 512

        streamed = await h.client.post(
            "/api/v1/task", content=chunks(), headers={"x-api-key": CLIENT_KEY}
        )
        assert streamed.status_code == 413


async def test_missing_and_unknown_keys(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        missing = await h.client.post("/api/v1/task", json={"model": "midjourney"})
        assert missing.status_code == 401 and error_type(missing) == "missing_api_key"
        unknown = await h.create(key="not-a-real-key")
        assert unknown.status_code == 401 and error_type(unknown) == "invalid_api_key"
        bearer = await h.client.post(
            "/api/v1/task",
            headers={"authorization": f"Bearer {CLIENT_KEY}"},
            json={"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"}},
        )
        assert bearer.status_code == 200


async def test_unknown_route_and_method_use_the_envelope(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        nowhere = await h.client.get("/api/v2/nothing")
        assert nowhere.status_code == 404 and error_type(nowhere) == "not_found"
        wrong = await h.client.put("/api/v1/task", headers={"x-api-key": CLIENT_KEY})
        assert wrong.status_code == 405 and error_type(wrong) == "method_not_allowed"


async def test_staged_limit_gives_429(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=7, plan=Plan.STANDARD, fast_slots=1, relax_slots=1),)
    config = EmulatorConfig(pending_seconds=30, processing_seconds=30)
    async with harness(
        redis, prefix, accounts=accounts, emulator_config=config, settings=Settings(staged_limit=2)
    ) as h:
        assert (await h.create(prompt="x --fast")).headers["x-mjgate-decision"] == "routed"
        for _ in range(2):
            staged = await h.create(prompt="x --fast")
            assert staged.json()["data"]["status"] == "staged"
        over = await h.create(prompt="x --fast")
        assert over.status_code == 429 and error_type(over) == "staged_limit"
        assert over.headers["retry-after"]
        assert len(await h.received()) == 1


async def test_relax_without_non_basic_account_is_503(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.BASIC),)
    async with harness(redis, prefix, accounts=accounts) as h:
        answer = await h.create(prompt="x --relax")
        assert answer.status_code == 503 and error_type(answer) == "no_relax_capable_account"
        assert await h.received() == [] and await in_flight(h, 1) == 0


async def test_redis_unreachable_is_503_fast_and_nothing_sent(tmp_path: Path, prefix: str) -> None:
    """A real Redis server of its own, shut down mid-test."""
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjr")))
    url = server.start()
    client = redis_client(Settings(redis_url=url))
    try:
        async with harness(client, prefix) as h:
            assert (await h.client.get("/readyz")).status_code == 200
            server.stop()
            started = time.monotonic()
            answer = await h.create(prompt="x --fast")
            elapsed = time.monotonic() - started
            assert answer.status_code == 503 and error_type(answer) == "store_unavailable"
            assert answer.headers["retry-after"]
            assert elapsed < 0.5
            ready = await h.client.get("/readyz")
            assert ready.status_code == 503 and "redis" in ready.json()["reasons"][0]
            assert await h.received() == []
    finally:
        server.stop()
        await client.aclose()


async def test_connection_refused_retries_on_another_account_then_502(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        faulty = h.faulty
        faulty.faults = [httpx.ConnectError("refused")]
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 200, answer.text
        assert faulty.creates == 2
        faulty.faults = [httpx.ConnectError("refused")] * h.settings.create_attempts
        failed = await h.create(prompt="x --fast")
        assert failed.status_code == 502 and error_type(failed) == "upstream_unavailable"
        bots = [spec.bot_id for spec in DEMO]
        assert sum([await in_flight(h, b) for b in bots]) == 1  # only the first task
        assert await h.assert_ran_as_routed() == 1


async def test_timeout_after_sending_is_504_and_never_resent(redis: Redis, prefix: str) -> None:
    # the lease covers the whole send (the upstream's timeouts): short ones, short lease
    quick = Settings(lease_seconds=0.5, upstream_timeout=0.5, upstream_connect_timeout=0.2)
    async with harness(redis, prefix, settings=quick) as h:
        h.faulty.faults = [SentThenTimeout()]
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 504 and error_type(answer) == "upstream_timeout"
        task_id = answer.json()["error"]["task_id"]  # the client can follow the task
        assert (await h.get(task_id)).json()["data"]["status"] == "pending"
        assert len(await h.received()) == 1
        held = sum([await in_flight(h, s.bot_id) for s in DEMO])
        assert held == 1  # the lease is kept until the reconciler knows
        for _ in range(100):
            await h.gate.tasks.checker.reconcile()
            if sum([await in_flight(h, s.bot_id) for s in DEMO]) == 0:
                break
            await asyncio.sleep(0.05)
        assert sum([await in_flight(h, s.bot_id) for s in DEMO]) == 0
        assert len(await h.received()) == 1  # never re-sent


async def test_idempotency_key_gives_the_same_task_once(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        headers = {"idempotency-key": "order-42"}
        answers = await asyncio.gather(
            *(h.create(prompt="x --fast", headers=headers) for _ in range(5))
        )
        ids = {a.json()["data"]["task_id"] for a in answers}
        assert len(ids) == 1
        assert len(await h.received()) == 1
        assert await h.assert_ran_as_routed() == 1


async def test_an_idempotency_key_names_one_request(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        headers = {"idempotency-key": "order-43"}
        first = await h.create(prompt="x --fast", headers=headers)
        same = await h.create(prompt="x --fast", headers=headers)
        assert same.headers["idempotent-replayed"] == "true"
        assert same.json()["data"]["task_id"] == first.json()["data"]["task_id"]
        other = await h.create(prompt="another prompt --fast", headers=headers)
        assert other.status_code == 422 and error_type(other) == "idempotency_key_reused"
        assert len(await h.received()) == 1


async def test_an_unexpected_failure_after_the_reservation_releases_it_at_once(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        h.faulty.faults = [RuntimeError("a bug after the reservation")]
        with pytest.raises(RuntimeError):  # the in-process client re-raises the app's bug
            await h.create(prompt="x --fast")
        assert sum([await in_flight(h, s.bot_id) for s in DEMO]) == 0
        failed = [r for r in (await h.received())]
        assert failed == []


async def test_a_staged_task_reserved_just_before_redis_fails_is_sent_once_it_is_back(
    prefix: str,
) -> None:
    """A settle hands its freed slot to a staged task, then Redis stops answering (a
    failover) before the task's record is read: the task waits for Redis and is sent, not
    left to the reconciler, which would fail a task it never sent as outcome unknown."""
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjs")))
    client = redis_client(Settings(redis_url=server.start(), redis_timeout=0.3))
    one = (AccountSpec(bot_id=7, name="one", plan=Plan.STANDARD, fast_slots=1, relax_slots=0),)
    config = EmulatorConfig(pending_seconds=0.0, processing_seconds=60.0)
    settings = Settings(track_interval=60.0, redis_timeout=0.3, lease_seconds=120.0)
    try:
        async with harness(
            client, prefix, accounts=one, webhooks=False, emulator_config=config, settings=settings
        ) as h:
            running = (await h.create(prompt="first --fast")).json()["data"]["task_id"]
            staged = (await h.create(prompt="second --fast")).json()["data"]["task_id"]
            assert (await h.gate.records.load(staged)).status == "staged"
            settlement = await h.gate.store.settle(running, Outcome.COMPLETED, dispatch=1)
            assert settlement is not None and len(settlement.dispatched) == 1
            assert server._process is not None
            os.kill(server._process.pid, signal.SIGSTOP)
            try:
                sending = asyncio.ensure_future(
                    h.gate.tasks.sender.send_staged(settlement.dispatched[0])
                )
                await asyncio.sleep(0.8)  # several reads time out meanwhile
                assert not sending.done()
            finally:
                os.kill(server._process.pid, signal.SIGCONT)
            await sending
            record = await h.gate.records.load(staged)
            assert record is not None and record.upstream_id, record
            assert len(await h.received()) == 2  # sent: the first task and this one
    finally:
        await client.aclose()
        server.stop()


async def test_a_task_the_upstream_took_keeps_its_id_across_a_redis_outage(prefix: str) -> None:
    """Redis stops answering between the upstream's answer and the record write that keeps
    the upstream id (a failover): the write is made again until Redis is back, so the client
    hears of a task mjgate can follow, not a 503 for a task that runs anyway (which the
    reconciler would then fail as outcome unknown)."""
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mju")))
    client = redis_client(Settings(redis_url=server.start(), redis_timeout=0.3))
    settings = Settings(redis_timeout=0.3, lease_seconds=120.0)
    try:
        async with harness(client, prefix, settings=settings) as h:
            process = server._process
            assert process is not None
            h.faulty.faults = [SentThen(lambda: os.kill(process.pid, signal.SIGSTOP))]
            creating = asyncio.ensure_future(h.create(prompt="outage --fast"))
            await asyncio.sleep(0.8)  # the record write times out, again and again
            assert not creating.done()
            os.kill(process.pid, signal.SIGCONT)
            answer = await creating
            assert answer.status_code == 200, answer.text
            record = await h.gate.records.load(answer.json()["data"]["task_id"])
            assert record is not None and record.upstream_id, record
            assert len(await h.received()) == 1
    finally:
        await client.aclose()
        server.stop()
