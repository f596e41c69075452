"""The whole client flow against the emulator: imagine → poll → upscale → variation → cancel."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from bench.loadgen import server_timing
from emulator.config import EmulatorConfig
from gateway.settings import Settings
from tests.harness import CLIENT_KEY, OTHER_KEY, harness

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def test_imagine_poll_upscale_variation(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        created = await h.create(prompt="a lighthouse at night --fast", aspect_ratio="16:9")
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["code"] == 200 and body["message"] == "success"
        task = body["data"]
        assert list(task)[:4] == ["task_id", "model", "task_type", "status"]
        assert task["status"] == "pending" and task["output"] is None
        assert task["meta"]["started_at"] == "0001-01-01T00:00:00Z"
        assert created.headers["x-mjgate-mode"] == "fast"
        assert created.headers["x-mjgate-decision"] == "routed"
        assert "x-request-id" in created.headers
        timing = server_timing(created.headers["server-timing"])
        assert list(timing) == ["auth", "route", "upstream", "record"]
        assert all(ms >= 0 for ms in timing.values())
        bot = int(created.headers["x-mjgate-bot-id"])

        done = await h.wait_status(task["task_id"], "completed")
        assert done["task_id"] == task["task_id"]
        assert done["output"]["progress"] == 100
        assert "upscale1" in done["output"]["actions"]
        assert done["meta"]["process_mode"] == "fast"

        upscale = await h.create("upscale", origin_task_id=task["task_id"], index="2")
        assert upscale.status_code == 200, upscale.text
        assert int(upscale.headers["x-mjgate-bot-id"]) == bot
        assert upscale.headers["x-mjgate-decision"] == "inherited"
        up = upscale.json()["data"]
        assert up["input"]["origin_task_id"] == task["task_id"]
        up_done = await h.wait_status(up["task_id"], "completed")
        assert up_done["input"]["origin_task_id"] == task["task_id"]

        variation = await h.create("variation", origin_task_id=task["task_id"], index="1")
        assert variation.status_code == 200, variation.text
        assert int(variation.headers["x-mjgate-bot-id"]) == bot
        await h.wait_status(variation.json()["data"]["task_id"], "completed")

        received = await h.received()
        assert [r["task_type"] for r in received] == ["imagine", "upscale", "variation"]
        assert {r["bot_id"] for r in received} == {bot}
        # the upstream saw its own ids, never mjgate's
        assert received[1]["origin_task_id"] != task["task_id"]
        assert await h.assert_ran_as_routed() == 3


async def test_cancel_a_pending_task(redis: Redis, prefix: str) -> None:
    config = EmulatorConfig(pending_seconds=30, processing_seconds=30)
    async with harness(redis, prefix, emulator_config=config) as h:
        created = (await h.create(prompt="x --fast")).json()["data"]
        answer = await h.client.delete(
            f"/api/v1/task/{created['task_id']}", headers={"x-api-key": CLIENT_KEY}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "code": 200,
            "data": None,
            "message": f"task {created['task_id']} canceled",
        }
        after = (await h.get(created["task_id"])).json()["data"]
        assert after["status"] == "failed"
        account = await h.gate.catalog.get_account(int(after["input"]["bot_id"]))
        assert account.fast_in_flight == 0 and account.fast_seconds_reserved == 0
        again = await h.client.delete(
            f"/api/v1/task/{created['task_id']}", headers={"x-api-key": CLIENT_KEY}
        )
        assert again.status_code == 400
        assert again.json()["error"]["type"] == "task_not_cancellable"
        assert await h.assert_ran_as_routed() == 1


async def test_client_webhook_is_delivered_with_client_secret(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        body = {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": "x --fast"},
            "config": {
                "webhook_config": {"endpoint": "http://127.0.0.1:9/mj", "secret": "client-secret"}
            },
        }
        created = await h.client.post("/api/v1/task", json=body, headers={"x-api-key": CLIENT_KEY})
        task = created.json()["data"]
        assert task["config"]["webhook_config"]["endpoint"] == "http://127.0.0.1:9/mj"
        await h.wait_status(task["task_id"], "completed")
        for _ in range(100):
            if any(b'"completed"' in r.content for r in h.hooks):
                break
            await h.gate.tasks.loops.deliver()
            import asyncio

            await asyncio.sleep(0.02)
        last = h.hooks[-1]
        assert last.headers["x-webhook-secret"] == "client-secret"
        assert last.headers["x-mjgate-signature"].startswith("sha256=")
        import orjson

        payload = orjson.loads(last.content)
        assert payload["data"]["task_id"] == task["task_id"]
        assert payload["data"]["config"]["webhook_config"]["secret"] == "client-secret"
        # mjgate's own webhook to GoAPI never shows
        assert "webhooks/goapi" not in last.content.decode()


async def test_other_clients_tasks_are_not_visible(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        task = (await h.create(prompt="x --fast")).json()["data"]
        other = await h.get(task["task_id"], key=OTHER_KEY)
        # unknown to this client: forwarded untouched, and the upstream doesn't know mjgate's id
        assert other.status_code == 404
        assert other.headers["x-mjgate-decision"] == "forwarded"


async def test_other_models_are_forwarded_untouched(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        answer = await h.client.post(
            "/api/v1/task",
            json={"model": "suno", "task_type": "music", "input": {}},
            headers={"x-api-key": CLIENT_KEY},
        )
        assert answer.headers["x-mjgate-decision"] == "forwarded"
        # the emulator runs only midjourney: its refusal is the proof the body reached it as sent
        assert answer.status_code == 400
        assert answer.json()["message"].startswith("model: unsupported model 'suno'")
        received = await h.received()
        assert [(r["task_type"], r["status"], r["task_id"]) for r in received] == [
            ("music", 400, None)
        ]


async def test_a_task_finished_in_the_create_answer_is_settled_at_once(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, emulator_config=EmulatorConfig.instant()) as h:
        created = await h.create(prompt="x --fast")
        task = created.json()["data"]
        assert task["status"] == "completed"
        bot = int(created.headers["x-mjgate-bot-id"])
        account = await h.gate.catalog.get_account(bot)
        assert account.in_flight == 0 and account.fast_seconds_reserved == 0
        record = await h.gate.records.load(task["task_id"])
        assert record.status == "completed"
        assert await h.assert_ran_as_routed() == 1


async def test_a_task_no_longer_pending_is_not_cancellable(redis: Redis, prefix: str) -> None:
    """Known to be processing: refused without asking the upstream; believed pending but
    processing upstream (mjgate's view older): the upstream's 400 is task_not_cancellable."""
    config = EmulatorConfig(pending_seconds=0.05, processing_seconds=30)
    settings = Settings(track_interval=60.0)
    async with harness(
        redis, prefix, emulator_config=config, settings=settings, webhooks=False
    ) as h:
        stale = (await h.create(prompt="stale --fast")).json()["data"]["task_id"]
        await asyncio.sleep(0.3)  # processing upstream; mjgate's record still says pending
        answer = await h.client.delete(f"/api/v1/task/{stale}", headers={"x-api-key": CLIENT_KEY})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "task_not_cancellable" and error["upstream_status"] == 400
        known = (await h.create(prompt="known --fast")).json()["data"]["task_id"]
        await asyncio.sleep(0.3)
        record = await h.gate.records.load(known)
        record = await h.gate.tasks.checker.check_upstream(record, source="test")  # learnt
        assert record.status == "processing"
        answer = await h.client.delete(f"/api/v1/task/{known}", headers={"x-api-key": CLIENT_KEY})
        error = answer.json()["error"]
        assert answer.status_code == 400 and error["type"] == "task_not_cancellable"
        assert "upstream_status" not in error  # not asked upstream
