"""GoAPI's task routes: create, fetch and cancel, behind `x-api-key` (or `Authorization: Bearer`).

Faults that delay an answer live here, on the request path: a slow create sleeps before
answering, a hung create waits until the client gives up (or the app shuts down), after the
task was created and recorded.
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.engine import Emulator
from emulator.errors import Unauthorized
from emulator.responses import JSONResponse, error_response, success

HANG_POLL_SECONDS = 0.05


def emulator_of(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def check_key(request: Request, expected: str | None) -> None:
    key = request.headers.get("x-api-key")
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise Unauthorized("missing API key: send the x-api-key header")
    if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthorized("invalid API key")


def base_url(request: Request) -> str:
    """Where the client reached the emulator, so image URLs lead back to it."""
    return str(request.base_url).rstrip("/")


async def create_task(request: Request) -> Response:
    emulator = emulator_of(request)
    check_key(request, emulator.config.api_key)
    created = emulator.create(await request.body(), base_url(request))
    if created.hang:
        return await _hang(request)
    if created.slow_seconds:
        await asyncio.sleep(created.slow_seconds)
    return success(emulator.render(created.task))


async def get_task(request: Request) -> Response:
    emulator = emulator_of(request)
    check_key(request, emulator.config.api_key)
    return success(emulator.render(emulator.get(request.path_params["task_id"])))


async def cancel_task(request: Request) -> Response:
    emulator = emulator_of(request)
    check_key(request, emulator.config.api_key)
    task = emulator.cancel(request.path_params["task_id"])
    return JSONResponse({"code": 200, "message": f"task {task.task_id} canceled"})


async def _hang(request: Request) -> Response:
    """Never answer: return only once the client has gone or the app is shutting down."""
    closing: asyncio.Event | None = getattr(request.app.state, "closing", None)
    while not await request.is_disconnected():
        if closing is not None and closing.is_set():
            break
        await asyncio.sleep(HANG_POLL_SECONDS)
    return error_response(503, "emulator shutting down")


def routes() -> list[Route]:
    return [
        Route("/api/v1/task", create_task, methods=["POST"]),
        Route("/api/v1/task/{task_id}", get_task, methods=["GET"]),
        Route("/api/v1/task/{task_id}", cancel_task, methods=["DELETE"]),
    ]
