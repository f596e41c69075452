"""Client keys on a shared pool, end to end in process: quotas with their headers and 429,
soft thresholds, expiry, pinning (and a bot_id ignored without the permission)."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.settings import Settings
from gateway.webhooks.outbound import signature
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.gateway.test_admin import call, data, error
from tests.harness import harness

SLOW = EmulatorConfig(pending_seconds=30, processing_seconds=30)  # tasks hold their slots


async def test_quota_headers_then_429_with_retry_after_at_the_reset(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        body = {"name": "team", "jobs_per_day": 2, "fast_hours_per_month": 10}
        key = data(await call(h, "POST", "/keys", body=body), 201)
        assert (key["jobs_per_day"], key["fast_seconds_per_month"]) == (2, 36000)
        first = await h.create(prompt="x --fast", key=key["secret"])
        assert first.status_code == 200, first.text
        assert first.headers["x-mjgate-quota-remaining-jobs-day"] == "1"
        assert first.headers["x-mjgate-quota-remaining-fast-seconds-month"] == "35940"
        assert (await h.create(prompt="y --relax", key=key["secret"])).status_code == 200
        refused = await h.create(prompt="z", key=key["secret"])
        details = error(refused, 429)
        assert (details["type"], details["quota"]) == ("quota_exceeded", "jobs_day")
        until_midnight = 86400 - int(time.time()) % 86400
        assert abs(int(refused.headers["retry-after"]) - until_midnight) <= 2
        assert (await h.create(prompt="x --fast")).status_code == 200  # other keys unaffected
        assert "x-mjgate-quota-remaining-jobs-day" not in (await h.create(prompt="x")).headers


async def test_soft_threshold_counted_once(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "t", "jobs_per_day": 5}), 201)
        for _ in range(5):
            assert (await h.create(prompt="x", key=key["secret"])).status_code == 200
        metrics = (await h.client.get("/metrics")).text
        assert 'mjgate_quota_thresholds_total{percent="80",quota="jobs_day"} 1.0' in metrics
        assert 'mjgate_quota_thresholds_total{percent="95",quota="jobs_day"} 1.0' in metrics


async def test_soft_thresholds_reach_the_operators_alert_webhook(redis: Redis, prefix: str) -> None:
    """MJGATE_ALERT_WEBHOOK_URL: each threshold crossed is POSTed once, signed; a refusing
    receiver is tried again, then logged (the create is never held back)."""
    url = "http://127.0.0.1:9/alerts"
    settings = Settings(alert_webhook_url=url, alert_webhook_secret="op-secret")
    async with harness(redis, prefix, settings=settings) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "t", "jobs_per_day": 5}), 201)
        for _ in range(5):
            assert (await h.create(prompt="x", key=key["secret"])).status_code == 200

        def alerts() -> list[httpx.Request]:
            return [r for r in h.hooks if str(r.url) == url]

        for _ in range(100):
            if len(alerts()) == 2:
                break
            await asyncio.sleep(0.05)
        sent = alerts()
        bodies = sorted((orjson.loads(r.content) for r in sent), key=lambda b: b["percent"])
        assert [(b["event"], b["key"], b["quota"], b["percent"]) for b in bodies] == [
            ("quota_threshold", key["id"], "jobs_day", 80),
            ("quota_threshold", key["id"], "jobs_day", 95),
        ]
        for request in sent:
            expected = signature("op-secret", request.content)
            assert request.headers["x-mjgate-signature"] == expected


async def test_an_expired_key_is_refused_with_key_expired(redis: Redis, prefix: str) -> None:
    now = [time.time()]
    async with harness(redis, prefix, clock=lambda: now[0]) as h:
        body = {"name": "temp", "expires_at": now[0] + 60}
        key = data(await call(h, "POST", "/keys", body=body), 201)
        assert (await h.create(prompt="x", key=key["secret"])).status_code == 200
        now[0] += 61
        assert error(await h.create(prompt="x", key=key["secret"]), 401)["type"] == "key_expired"


PINNING = (
    AccountSpec(bot_id=1001, plan=Plan.BASIC),
    AccountSpec(bot_id=1002, plan=Plan.STANDARD, fast_slots=1),
    AccountSpec(bot_id=1003, plan=Plan.PRO),
)


async def test_pinned_tasks(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, accounts=PINNING, emulator_config=SLOW) as h:
        body = {"name": "pinner", "allow_pinning": True}
        key = data(await call(h, "POST", "/keys", body=body), 201)["secret"]
        first = await h.create(prompt="x --fast", key=key, bot_id=1002)
        assert first.headers["x-mjgate-bot-id"] == "1002", first.text
        assert first.headers["x-mjgate-decision"] == "pinned"
        busy = await h.create(prompt="y --fast", key=key, bot_id=1002)  # 1003 is free
        assert busy.json()["data"]["status"] == "staged"
        refused = error(await h.create(prompt="z --relax", key=key, bot_id=1001), 409)
        assert (refused["type"], refused["reason"]) == (
            "pinned_account_unavailable",
            "no_relax_on_basic",
        )
        # a key without the permission: its bot_id is ignored, mjgate chooses
        ignored = await h.create(prompt="w --fast", bot_id=1002)
        assert ignored.status_code == 200 and ignored.headers["x-mjgate-bot-id"] == "1003"
        assert ignored.headers["x-mjgate-decision"] == "routed"


async def test_admin_refuses_bad_tenancy_fields(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        for body, field in (
            ({"name": "k", "timezone": "Mars/Olympus"}, "timezone"),
            ({"name": "k", "weight": 0}, "weight"),
            ({"name": "k", "jobs_per_day": -1}, "jobs_per_day"),
            ({"name": "k", "max_in_flight": 0}, "max_in_flight"),
        ):
            details = error(await call(h, "POST", "/keys", body=body), 400)
            assert details["field"] == field, details


async def test_a_pinned_task_refused_by_its_account_is_not_run_elsewhere(
    redis: Redis, prefix: str
) -> None:
    from tests.gateway.test_account_refusals import FIVE, refusal

    async with harness(redis, prefix, accounts=FIVE, notifications=False) as h:
        body = {"name": "pinner", "allow_pinning": True, "jobs_per_day": 5}
        key = data(await call(h, "POST", "/keys", body=body), 201)["secret"]
        h.faulty.faults = [refusal("mj_bot_banned: account banned")]
        answer = await h.create(prompt="x --fast", key=key, bot_id=2)
        assert answer.status_code == 503, answer.text
        assert error(answer, 503)["type"] == "no_account_accepted"
        assert h.faulty.creates == 1  # account 2 only, never another one
        # the failed task's job was given back
        again = await h.create(prompt="y --fast", key=key, bot_id=3)
        assert again.headers["x-mjgate-quota-remaining-jobs-day"] == "4", again.text


async def test_a_task_moved_to_another_account_is_still_charged_to_its_key(
    redis: Redis, prefix: str
) -> None:
    """The refused attempt's release gives the charge back; the retry on another account
    charges it again: a key's job is never free because an account refused it."""
    from tests.gateway.test_account_refusals import FIVE, refusal

    async with harness(redis, prefix, accounts=FIVE, notifications=False) as h:
        body = {"name": "team", "jobs_per_day": 2, "fast_hours_per_day": 1}
        key = data(await call(h, "POST", "/keys", body=body), 201)["secret"]
        h.faulty.faults = [refusal("mj_bot_banned: account banned")]
        moved = await h.create(prompt="x --fast", key=key)
        assert moved.status_code == 200, moved.text
        assert h.faulty.creates == 2  # refused by one account, sent by another
        second = await h.create(prompt="y --fast", key=key)
        assert second.headers["x-mjgate-quota-remaining-jobs-day"] == "0", second.text
        # both tasks' fast time counted (60 s each at the default cost of imagine fast)
        left = int(second.headers["x-mjgate-quota-remaining-fast-seconds-day"])
        assert left == 3600 - 2 * 60, second.headers
        assert error(await h.create(prompt="z", key=key), 429)["type"] == "quota_exceeded"
