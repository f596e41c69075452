"""GoAPI's HYA account notifications drive account states (docs/operators.md).

Sent as GoAPI sends them, to `/webhooks/goapi/notifications/<token>` with the secret header;
checked through the store and the admin API (`accounts show` reads the same view).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.accounts import AccountSpec, AccountStatus
from routing.model import AccountState, Plan, Setting
from tests.harness import ADMIN_TOKEN, Harness, harness

TWO_PRO = (AccountSpec(2001, name="first", plan=Plan.PRO),
           AccountSpec(2002, name="second", plan=Plan.PRO))  # fmt: skip


async def notify(h: Harness, kind: str, **detail: Any) -> httpx.Response:
    body = {"type": kind, "time": int(time.time()), "message": f"{kind} happened",
            "detail": detail}  # fmt: skip
    answer = await h.client.post(
        f"/webhooks/goapi/notifications/{goapi_token(h.settings, 'notifications')}",
        json=body, headers={"x-webhook-secret": goapi_secret(h.settings)})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"code": 200, "data": None, "message": "success"}
    return answer


async def account(h: Harness, bot_id: int) -> AccountStatus:
    status: AccountStatus | None = await h.gate.catalog.get_account(bot_id)
    assert status is not None
    return status


async def shown(h: Harness, bot_id: int) -> dict[str, Any]:
    """The account as `mjgate accounts show` gets it."""
    answer = await h.client.get(
        f"/admin/v1/accounts/{bot_id}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()["data"]
    return view


def notifications(h: Harness, kind: str) -> float:
    value = h.registry.get_sample_value("mjgate_account_notifications_total", {"type": kind})
    return value or 0.0


def events(h: Harness, event: str) -> float:
    value = h.registry.get_sample_value("mjgate_account_events_total", {"event": event})
    return value or 0.0


async def test_ban_with_an_end_cools_the_account_until_then(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        block_until = time.time() + 0.6
        await notify(h, "mj_bot_banned", bot_id=1003, bot_name="pro", reason="spam filter",
                     block_until=block_until)  # fmt: skip
        cooling = await account(h, 1003)
        assert cooling.state is AccountState.COOLING
        assert cooling.state_until == pytest.approx(block_until, abs=0.01)
        assert cooling.state_reason == "goapi: mj_bot_banned spam filter"
        assert events(h, "cooled") == 1 and notifications(h, "mj_bot_banned") == 1

        deadline = time.monotonic() + 5
        while (await account(h, 1003)).state is not AccountState.ACTIVE:
            assert time.monotonic() < deadline, "the account never came back by itself"
            await asyncio.sleep(0.05)  # the background maintenance loop does it, no one else
        view = await shown(h, 1003)
        assert view["state"] == "active" and view["state_until"] is None
        assert [(e["from"], e["to"]) for e in view["history"]] == [
            ("cooling", "active"),
            ("active", "cooling"),
        ]
        assert view["history"][1]["reason"] == "goapi: mj_bot_banned spam filter"


@pytest.mark.parametrize("block_until", [0, -1, None, "soon"])
async def test_ban_without_an_end_disables(redis: Redis, prefix: str, block_until: Any) -> None:
    async with harness(redis, prefix) as h:
        detail = {"bot_id": 1002, "bot_name": "standard", "reason": "tos"}
        if block_until is not None:
            detail["block_until"] = block_until
        await notify(h, "mj_bot_banned", **detail)
        status = await account(h, 1002)
        assert status.state is AccountState.DISABLED
        assert status.state_reason == "goapi: mj_bot_banned (no end)"
        assert events(h, "disabled") == 1


async def test_no_fast_hours_sets_fast_time_zero_and_setting_relax(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=TWO_PRO) as h:
        await notify(h, "mj_bot_no_fasthour", bot_id=2001, bot_name="first",
                     subscription_plan="pro")  # fmt: skip
        status = await account(h, 2001)
        assert status.fast_seconds_left == 0 and status.setting is Setting.RELAX
        assert status.declared_setting is Setting.FAST  # restored at renewal
        assert status.state is AccountState.ACTIVE  # still takes relax work
        view = await shown(h, 2001)
        assert {e["what"] for e in view["history"]} == {"fast_time", "setting"}
        assert all(e["reason"] == "goapi: mj_bot_no_fasthour" for e in view["history"])
        for _ in range(4):  # fast work goes elsewhere now
            created = await h.create(prompt="x --fast")
            assert created.headers["x-mjgate-bot-id"] == "2002"
            assert created.headers["x-mjgate-mode"] == "fast"


async def test_captcha_pauses_and_routing_stops_using_the_account_at_once(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=TWO_PRO) as h:
        await notify(h, "mj_bot_captcha_required", bot_id=2001, bot_name="first")
        status = await account(h, 2001)
        assert status.state is AccountState.PAUSED
        assert status.state_reason == "goapi: mj_bot_captcha_required"
        assert events(h, "paused") == 1
        for prompt in ("x --fast", "x --relax", "x --turbo", "x --fast", "x --relax"):
            created = await h.create(prompt=prompt)
            assert created.status_code == 200, created.text
            assert created.headers["x-mjgate-bot-id"] == "2002"
        # the same notification again changes nothing (GoAPI may repeat itself)
        await notify(h, "mj_bot_captcha_required", bot_id=2001, bot_name="first")
        assert len((await shown(h, 2001))["history"]) == 1


async def test_expired_subscription_disables(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        await notify(h, "mj_bot_subscription_expired", bot_id=1004, bot_name="mega")
        view = await shown(h, 1004)
        assert view["state"] == "disabled"
        assert view["state_reason"] == "goapi: mj_bot_subscription_expired"
        assert view["history"][0]["to"] == "disabled"


async def test_no_active_bot_is_logged_and_counted(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(redis, prefix) as h:
        before = [await account(h, s) for s in (1001, 1002, 1003, 1004)]
        with caplog.at_level(logging.INFO, logger="mjgate"):
            await notify(h, "no_active_mj_bot")
        assert notifications(h, "no_active_mj_bot") == 1
        assert any(r.getMessage() == "notification" and
                   getattr(r, "fields", {}).get("type") == "no_active_mj_bot"
                   for r in caplog.records)  # fmt: skip
        assert [await account(h, s) for s in (1001, 1002, 1003, 1004)] == before


async def test_unknown_account_or_type_is_logged_and_answered_200(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(redis, prefix) as h:
        before = [await account(h, s) for s in (1001, 1002, 1003, 1004)]
        with caplog.at_level(logging.INFO, logger="mjgate"):
            await notify(h, "mj_bot_captcha_required", bot_id=999, bot_name="ghost")
            await notify(h, "mj_bot_banned", bot_id=999, block_until=0)
            await notify(h, "mj_something_new", bot_id=1002)
            await notify(h, "mj_penalty_triggered", bot_id=1003, penalty="x")
            await notify(h, "mj_bot_banned", bot_id="1002")  # not an integer id
        unknown = [r for r in caplog.records if r.getMessage() == "notification_unknown_account"]
        assert len(unknown) == 2
        assert all(getattr(r, "fields", {}).get("bot_id") == 999 for r in unknown)
        assert notifications(h, "other") == 1  # the unknown type, in a bounded label
        assert [await account(h, s) for s in (1001, 1002, 1003, 1004)] == before


async def test_notifications_need_the_token_and_secret(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        body = {"type": "mj_bot_captcha_required", "detail": {"bot_id": 1002}}
        token = goapi_token(h.settings, "notifications")
        wrong_token = await h.client.post(
            "/webhooks/goapi/notifications/nope",
            json=body,
            headers={"x-webhook-secret": goapi_secret(h.settings)},
        )
        assert wrong_token.status_code == 404
        wrong_secret = await h.client.post(
            f"/webhooks/goapi/notifications/{token}",
            json=body,
            headers={"x-webhook-secret": "guess"},
        )
        assert wrong_secret.status_code == 403
        assert (await account(h, 1002)).state is AccountState.ACTIVE
