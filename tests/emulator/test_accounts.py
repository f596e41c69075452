"""Account states and HYA notifications: ban, captcha, expiry, restore, running out of fast time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from emulator.config import EmulatedAccountSpec
from tests.emulator.conftest import START, Harness, MakeHarness, Received, receiver_app

NOTIFY = {"notifications_url": "http://127.0.0.1:9/notify", "notifications_secret": "n-secret"}


async def notified(harness: Harness, received: Received) -> list[Any]:
    async with asyncio.timeout(10):
        await harness.emulator.sender.wait_idle()
    return received.bodies()


async def make(make_harness: MakeHarness, *specs: EmulatedAccountSpec) -> tuple[Harness, Received]:
    received = Received()
    harness = await make_harness(
        webhook_transport=httpx.ASGITransport(receiver_app(received)),
        accounts=specs or (EmulatedAccountSpec(1, "pro", name="alpha"),),
        **NOTIFY,
    )
    return harness, received


async def test_ban_notifies_fails_running_tasks_and_refuses_creates(
    make_harness: MakeHarness,
) -> None:
    harness, received = await make(make_harness, EmulatedAccountSpec(1, "pro", fast_slots=1))
    running = await harness.create("imagine", prompt="p --fast", bot_id=1)
    queued = await harness.create("imagine", prompt="p --fast", bot_id=1)
    harness.tick(3)
    response = await harness.client.post(
        "/_emulator/accounts/1/ban", json={"block_until": 0, "reason": "tos"}
    )
    assert response.status_code == 200 and response.json()["state"] == "banned"
    for task in (running, queued):
        failed = await harness.get(task["task_id"])
        assert failed["status"] == "failed"
        assert failed["error"]["message"].startswith("mj_bot_banned: ")
    account = await harness.account(1)
    assert account["in_flight"] == {"fast": 0, "relax": 0} and account["fast_seconds"] == 108000
    refused = await harness.post("imagine", prompt="p", bot_id=1)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("mj_bot_banned: ")
    bodies = await notified(harness, received)
    assert bodies == [
        {
            "type": "mj_bot_banned",
            "time": int(START + 3),
            "message": bodies[0]["message"],
            "detail": {"bot_id": 1, "bot_name": "bot-1", "reason": "tos", "block_until": 0},
        }
    ]
    assert received.calls[0][0]["x-webhook-secret"] == "n-secret"


@pytest.mark.parametrize(
    ("action", "kind"),
    [("captcha", "mj_bot_captcha_required"), ("expire", "mj_bot_subscription_expired")],
)
async def test_captcha_and_expiry(make_harness: MakeHarness, action: str, kind: str) -> None:
    harness, received = await make(make_harness)
    await harness.client.post(f"/_emulator/accounts/1/{action}")
    refused = await harness.post("imagine", prompt="p", bot_id=1)
    assert refused.json()["message"].startswith(f"{kind}: ")
    any_account = await harness.post("imagine", prompt="p")
    assert any_account.json()["message"].startswith("no_active_mj_bot: ")
    assert await notified(harness, received) == [
        {
            "type": kind,
            "time": int(START),
            "message": (await notified(harness, received))[0]["message"],
            "detail": {"bot_id": 1, "bot_name": "alpha"},
        }
    ]
    await harness.client.post("/_emulator/accounts/1/restore")
    assert (await harness.post("imagine", prompt="p", bot_id=1)).status_code == 200
    assert len(await notified(harness, received)) == 1  # restoring notifies nothing


async def test_children_of_a_banned_account_are_refused(make_harness: MakeHarness) -> None:
    harness, _ = await make(make_harness)
    grid = await harness.completed("imagine", prompt="p --fast", bot_id=1)
    await harness.client.post("/_emulator/accounts/1/ban", json={})
    response = await harness.post("upscale", origin_task_id=grid["task_id"], index="1")
    assert response.status_code == 400
    assert response.json()["message"].startswith("mj_bot_banned: ")


async def test_a_timed_ban_lifts_itself(make_harness: MakeHarness) -> None:
    harness, _ = await make(make_harness)
    await harness.client.post("/_emulator/accounts/1/ban", json={"block_until": START + 60})
    assert (await harness.post("imagine", prompt="p", bot_id=1)).status_code == 400
    harness.tick(61)
    assert (await harness.account(1))["state"] == "ok"
    assert (await harness.post("imagine", prompt="p", bot_id=1)).status_code == 200


async def test_running_out_of_fast_time_notifies_and_turns_relax(
    make_harness: MakeHarness,
) -> None:
    harness, received = await make(
        make_harness, EmulatedAccountSpec(7, "standard", fast_seconds=100, name="s")
    )
    first = await harness.create("imagine", prompt="p --fast", bot_id=7)
    second = await harness.create("imagine", prompt="p --fast", bot_id=7)  # both fit at create
    await harness.finish(first["task_id"])
    await harness.finish(second["task_id"])
    account = await harness.account(7)
    assert account["fast_seconds"] == 0 and account["setting"] == "relax"
    assert account["fast_seconds_used"] == 100
    bodies = await notified(harness, received)
    assert [b["type"] for b in bodies] == ["mj_bot_no_fasthour"]
    assert bodies[0]["detail"] == {"bot_id": 7, "bot_name": "s", "subscription_plan": "standard"}
    third = await harness.create("imagine", prompt="p --fast", bot_id=7)
    assert third["meta"]["process_mode"] == "relax"
    listed = (await harness.client.get("/_emulator/notifications")).json()["notifications"]
    assert listed == bodies


async def test_unknown_account_and_action(make_harness: MakeHarness) -> None:
    harness, _ = await make(make_harness)
    assert (await harness.client.post("/_emulator/accounts/9/ban")).status_code == 404
    assert (await harness.client.post("/_emulator/accounts/1/smite")).status_code == 400
    bad = await harness.client.post("/_emulator/accounts/1/ban", json={"block_until": "soon"})
    assert bad.status_code == 400
