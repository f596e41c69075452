"""Harnesses for the emulator: in-process (ASGI, injected clock) and over real sockets (uvicorn).

Time moves when a test says so (`harness.tick(seconds)`), never by sleeping. Webhook receivers
are small Starlette apps that record what they get; they are reached in-process through
`httpx.ASGITransport` or over a socket when served by uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.engine import Emulator

KEY = {"x-api-key": "test-key"}
START = 1_750_000_000.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Received:
    """What a webhook receiver got: (headers, json body) per request, in arrival order."""

    calls: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first

    def bodies(self) -> list[Any]:
        return [body for _, body in self.calls]


def receiver_app(received: Received) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.json()
        if received.fail_first > 0:
            received.fail_first -= 1
            return Response(status_code=500)
        received.calls.append((dict(request.headers), body))
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


@dataclass
class Harness:
    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def emulator(self) -> Emulator:
        emulator: Emulator = self.app.state.emulator
        return emulator

    async def post(self, task_type: str, **fields: Any) -> httpx.Response:
        config = fields.pop("config", None)
        body: dict[str, Any] = {"model": "midjourney", "task_type": task_type, "input": fields}
        if config is not None:
            body["config"] = config
        return await self.client.post("/api/v1/task", json=body, headers=KEY)

    async def create(self, task_type: str, **fields: Any) -> dict[str, Any]:
        response = await self.post(task_type, **fields)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def get(self, task_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/task/{task_id}", headers=KEY)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        self.emulator.advance()

    async def finish(self, task_id: str) -> dict[str, Any]:
        """Move time until the task is terminal (a task takes at most a few phases)."""
        for _ in range(100):
            data = await self.get(task_id)
            if data["status"] in ("completed", "failed"):
                return data
            self.tick(1.0)
        raise AssertionError(f"task {task_id} never finished")

    async def completed(self, task_type: str, **fields: Any) -> dict[str, Any]:
        data = await self.create(task_type, **fields)
        done = await self.finish(data["task_id"])
        assert done["status"] == "completed", done
        return done

    async def account(self, bot_id: int) -> dict[str, Any]:
        accounts = (await self.client.get("/_emulator/accounts")).json()["accounts"]
        return next(a for a in accounts if a["bot_id"] == bot_id)


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness() -> AsyncIterator[MakeHarness]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            config: EmulatorConfig | None = None,
            *,
            webhook_transport: httpx.AsyncBaseTransport | None = None,
            **changes: Any,
        ) -> Harness:
            """A running emulator; `changes` are EmulatorConfig fields (retries are instant)."""
            changes.setdefault("webhook_retry_delays", (0.0, 0.0, 0.0))
            config = replace(config or EmulatorConfig(), **changes)
            clock = FakeClock()
            app = create_app(config, clock=clock, webhook_transport=webhook_transport)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app), base_url="http://127.0.0.1:8090"
                )
            )
            return Harness(app, client, clock)

        yield make


@pytest.fixture
async def harness(make_harness: MakeHarness) -> Harness:
    return await make_harness()


async def eventually(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait (bounded) for something another task or thread does; no timing is asserted."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1, an ephemeral port, in a thread."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="error", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
