"""Task webhooks: in-process with an injected clock, retries, and over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.app import create_app
from emulator.config import EmulatorConfig
from tests.emulator.conftest import KEY, MakeHarness, Received, eventually, receiver_app, serve

HOOK = {"endpoint": "http://127.0.0.1:9/hook", "secret": "s3cret"}
IMAGINE = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p"}}


async def idle(harness_app: Any) -> None:
    async with asyncio.timeout(10):
        await harness_app.state.emulator.sender.wait_idle()


async def test_webhooks_on_create_progress_and_completion(make_harness: MakeHarness) -> None:
    received = Received()
    harness = await make_harness(
        webhook_transport=httpx.ASGITransport(receiver_app(received)), progress_steps=3
    )
    task = await harness.create("imagine", prompt="p --fast", config={"webhook_config": HOOK})
    await idle(harness.app)
    assert [b["data"]["status"] for b in received.bodies()] == ["pending"]
    await harness.finish(task["task_id"])
    await idle(harness.app)
    bodies = received.bodies()
    assert [(b["data"]["status"], (b["data"]["output"] or {}).get("progress")) for b in bodies] == [
        ("pending", None),
        ("processing", 0),
        ("processing", 25),
        ("processing", 50),
        ("processing", 75),
        ("completed", 100),
    ]
    for headers, body in received.calls:
        assert headers["x-webhook-secret"] == "s3cret"
        assert list(body) == ["timestamp", "data"]
        assert isinstance(body["timestamp"], int)
        assert body["data"]["task_id"] == task["task_id"]
    assert bodies[-1]["data"]["meta"]["ended_at"] != "0001-01-01T00:00:00Z"


async def test_failure_and_cancel_are_sent(make_harness: MakeHarness) -> None:
    received = Received()
    harness = await make_harness(webhook_transport=httpx.ASGITransport(receiver_app(received)))
    task = await harness.create("imagine", prompt="p", config={"webhook_config": HOOK})
    await harness.client.delete(f"/api/v1/task/{task['task_id']}", headers=KEY)
    await idle(harness.app)
    last = received.bodies()[-1]["data"]
    assert last["status"] == "failed" and last["error"]["message"] == "task canceled"


async def test_non_2xx_is_retried(make_harness: MakeHarness) -> None:
    received = Received(fail_first=2)
    harness = await make_harness(webhook_transport=httpx.ASGITransport(receiver_app(received)))
    await harness.create("imagine", prompt="p", config={"webhook_config": HOOK})
    await idle(harness.app)
    assert [b["data"]["status"] for b in received.bodies()] == ["pending"]
    log = (await harness.client.get("/_emulator/webhooks")).json()
    assert log["deliveries"][0]["attempts"] == 3 and log["deliveries"][0]["ok"] is True


async def test_undeliverable_webhooks_are_given_up(make_harness: MakeHarness) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    harness = await make_harness(webhook_transport=httpx.MockTransport(refuse))
    await harness.create("imagine", prompt="p", config={"webhook_config": HOOK})
    await idle(harness.app)
    delivery = (await harness.client.get("/_emulator/webhooks")).json()["deliveries"][0]
    assert delivery == {
        "key": delivery["key"],
        "url": HOOK["endpoint"],
        "attempts": 4,
        "status": None,
        "error": "ConnectError",
        "ok": False,
    }


async def test_tasks_without_an_endpoint_send_nothing(make_harness: MakeHarness) -> None:
    received = Received()
    harness = await make_harness(
        EmulatorConfig.instant(),
        webhook_transport=httpx.ASGITransport(receiver_app(received)),
    )
    await harness.create("imagine", prompt="p")
    assert harness.emulator.sender.pending == 0
    await idle(harness.app)
    assert received.calls == []


async def test_webhooks_over_real_sockets() -> None:
    """The emulator and the receiver each served by uvicorn, on the real clock."""
    received = Received()
    config = EmulatorConfig(pending_seconds=0.05, processing_seconds=0.1, progress_steps=1)
    with serve(receiver_app(received)) as hook_url, serve(create_app(config)) as emulator_url:
        body = {
            "model": "midjourney",
            "task_type": "imagine",
            "input": {"prompt": "p --fast"},
            "config": {"webhook_config": {"endpoint": f"{hook_url}/hook", "secret": "x"}},
        }
        async with httpx.AsyncClient(base_url=emulator_url, timeout=5) as client:
            created = (await client.post("/api/v1/task", json=body, headers=KEY)).json()["data"]
            assert created["status"] == "pending"

            def completed() -> bool:
                return any(b["data"]["status"] == "completed" for b in received.bodies())

            await eventually(completed, "the completion webhook")
            statuses = [b["data"]["status"] for b in received.bodies()]
            assert statuses[0] == "pending" and statuses[-1] == "completed"
            assert "processing" in statuses
            done = (await client.get(f"/api/v1/task/{created['task_id']}", headers=KEY)).json()
            image = await client.get(done["data"]["output"]["image_url"])
            assert done["data"]["output"]["image_url"].startswith(emulator_url)
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        assert all(headers["x-webhook-secret"] == "x" for headers, _ in received.calls)


async def test_shutdown_survives_a_receiver_that_swallows_cancellation() -> None:
    """An in-process receiver runs inside the delivery's task and may absorb its cancel."""
    entered = asyncio.Event()

    async def stubborn(request: Request) -> Response:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", stubborn, methods=["POST"])])
    app = create_app(EmulatorConfig.instant(), webhook_transport=httpx.ASGITransport(receiver))
    body = dict(IMAGINE, config={"webhook_config": HOOK})
    async with asyncio.timeout(4):  # below the sender's own 5 s bound: the flag did it
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                assert (await c.post("/api/v1/task", json=body, headers=KEY)).is_success
                await entered.wait()
