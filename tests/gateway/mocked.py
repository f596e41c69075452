"""mjgate in process with an upstream that records every request and answers as told: for
tests that must see exactly what mjgate sent upstream (or that it sent nothing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Scope

from gateway.app import create_app
from gateway.keys.policy import KeyPolicy
from gateway.settings import Settings
from routing.accounts import AccountSpec

STATIC_KEY = "static-key-000001"


@dataclass
class Mocked:
    client: httpx.AsyncClient
    app: Starlette
    sent: list[httpx.Request]  # every request mjgate made upstream
    answers: list[httpx.Response]  # the next answers of the upstream (default: 404)

    async def managed(self, **policy: Any) -> str:
        _, secret = await self.app.state.mjgate.clients.create("t", KeyPolicy(**policy))
        return str(secret)


@contextlib.asynccontextmanager
async def mocked(
    redis: Redis,
    prefix: str,
    *,
    accounts: tuple[AccountSpec, ...] = (),
    create_answer: httpx.Response | None = None,
    **settings: Any,
) -> AsyncIterator[Mocked]:
    """mjgate with an upstream that records every request and answers as told (`answers`,
    else `create_answer` for creates, else 404)."""
    sent: list[httpx.Request] = []
    answers: list[httpx.Response] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        if answers:
            return answers.pop(0)
        if create_answer is not None and request.method == "POST":
            return create_answer
        return httpx.Response(404, json={"code": 404, "data": None, "message": "task not found"})

    base = Settings(redis_prefix=prefix, goapi_api_key="k-goapi", client_keys=(STATIC_KEY,))
    app = create_app(
        replace(base, **settings), redis=redis, upstream_transport=httpx.MockTransport(upstream)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost:8080"
        ) as client,
    ):
        for spec in accounts:
            await app.state.mjgate.catalog.apply_account(spec)
        for _ in range(500):  # as the harness does: the pool loader has loaded the scripts
            if app.state.mjgate.pool_loaded:
                break
            await asyncio.sleep(0.01)
        yield Mocked(client, app, sent, answers)


async def asgi_call(
    app: ASGIApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    incoming: list[Message] | None = None,
) -> tuple[int, bytes]:
    """One request straight into the ASGI app: the path exactly as given (no client
    normalises `..`), any header bytes, and the body messages as given (`http.disconnect`:
    the client left)."""
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode("utf-8"), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 1), "server": ("localhost", 8080),
    }  # fmt: skip
    queue = list(incoming or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # as a server does: nothing more is coming
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def raw_get(app: ASGIApp, path: str, key: str, method: str = "GET") -> tuple[int, bytes]:
    return await asgi_call(app, method, path, [(b"x-api-key", key.encode())])
