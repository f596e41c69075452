"""Control and inspection under `/_emulator` (no auth: the emulator is a test double).

GET|DELETE  /_emulator/received                   every create accepted or refused
GET         /_emulator/tasks                      every task: times, mode, GETs
GET|PUT     /_emulator/accounts                   list / replace the set
PATCH       /_emulator/accounts/{bot_id}          change fields
POST        /_emulator/accounts/{bot_id}/ban      {"block_until", "reason"}; also
                             .../captcha, .../expire, .../restore
GET|POST|DELETE /_emulator/faults                 pending faults / add / clear
POST        /_emulator/reset                      tasks, received, faults, peaks
GET|PATCH   /_emulator/config                     speed and durations at run time
GET         /_emulator/notifications, /_emulator/webhooks    what was sent
GET         /_emulator/health, /_emulator/images/{task_id}/{n}.png
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator import pool
from emulator.accounts import AccountState
from emulator.api import emulator_of
from emulator.config import ConfigError
from emulator.errors import BadRequest
from emulator.images import serve_image
from emulator.responses import JSONResponse, read_json


def _accounts(request: Request) -> Response:
    emulator = emulator_of(request)
    now = emulator.clock()
    emulator.advance(now)
    return JSONResponse({"accounts": [a.to_dict(now) for a in emulator.accounts.values()]})


async def accounts(request: Request) -> Response:
    if request.method == "PUT":
        pool.replace_accounts(emulator_of(request), await read_json(request))
    return _accounts(request)


async def patch_account(request: Request) -> Response:
    emulator = emulator_of(request)
    account = pool.patch_account(emulator, request.path_params["bot_id"], await read_json(request))
    return JSONResponse(account.to_dict(emulator.clock()))


_ACTIONS = {
    "ban": AccountState.BANNED,
    "captcha": AccountState.CAPTCHA,
    "expire": AccountState.EXPIRED,
    "restore": AccountState.OK,
}


async def account_action(request: Request) -> Response:
    emulator = emulator_of(request)
    action = request.path_params["action"]
    state = _ACTIONS.get(action)
    if state is None:
        raise BadRequest(f"unknown action {action!r}: use ban, captcha, expire or restore")
    block_until, reason = 0.0, ""
    if state is AccountState.BANNED:
        block_until, reason = pool.ban_arguments(await read_json(request))
    bot_id = request.path_params["bot_id"]
    account = pool.set_state(emulator, bot_id, state, block_until=block_until, reason=reason)
    return JSONResponse(account.to_dict(emulator.clock()))


async def received(request: Request) -> Response:
    emulator = emulator_of(request)
    if request.method == "DELETE":
        emulator.received.clear()
    return JSONResponse({"received": list(emulator.received)})


async def tasks(request: Request) -> Response:
    """Every task with its precise times (unix seconds) and when it was fetched: what a test
    needs to measure how long a gateway took to learn that a task ended."""
    emulator = emulator_of(request)
    rows = [
        {
            "task_id": task.task_id,
            "bot_id": task.account.bot_id if task.account else None,
            "mode": str(task.mode),
            "status": str(task.status),
            "created_at": task.created_at,
            "started_at": task.started_at,
            "ended_at": task.ended_at,
            "gets": emulator.gets.get(task.task_id, []),
        }
        for task in emulator.tasks.values()
    ]
    return JSONResponse({"tasks": rows})


async def faults(request: Request) -> Response:
    emulator = emulator_of(request)
    if request.method == "POST":
        emulator.faults.add(await read_json(request))
    elif request.method == "DELETE":
        emulator.faults.clear()
    return JSONResponse({"faults": emulator.faults.to_dict()})


async def reset(request: Request) -> Response:
    emulator_of(request).reset()
    return JSONResponse({"reset": True})


def _config(request: Request) -> dict[str, Any]:
    emulator = emulator_of(request)
    config = emulator.config
    return {
        "pending_seconds": config.pending_seconds,
        "processing_seconds": config.processing_seconds,
        "progress_steps": config.progress_steps,
        "task_seconds": config.task_seconds,
        "realistic_durations": config.realistic_durations,
        "time_scale": config.time_scale,
        "duration_spread": emulator.durations.spread,
        "duration_seed": config.duration_seed,
        "instant": config.is_instant,
        "auth": "any key" if config.api_key is None else "fixed key",
        "notifications_url": config.notifications_url,
    }


async def config(request: Request) -> Response:
    if request.method == "PATCH":
        changes = await read_json(request)
        if not isinstance(changes, dict):
            raise BadRequest("the body must be a JSON object")
        emulator = emulator_of(request)
        try:
            emulator.configure(emulator.config.with_speed(changes))
        except ConfigError as exc:
            raise BadRequest(str(exc)) from None
    return JSONResponse({"config": _config(request)})


async def notifications(request: Request) -> Response:
    return JSONResponse({"notifications": list(emulator_of(request).notifications)})


async def webhooks(request: Request) -> Response:
    sender = emulator_of(request).sender
    return JSONResponse({"pending": sender.pending, "deliveries": list(sender.log)})


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def routes() -> list[Route]:
    prefix = "/_emulator"
    return [
        Route(f"{prefix}/received", received, methods=["GET", "DELETE"]),
        Route(f"{prefix}/accounts", accounts, methods=["GET", "PUT"]),
        Route(f"{prefix}/accounts/{{bot_id:int}}", patch_account, methods=["PATCH"]),
        Route(f"{prefix}/accounts/{{bot_id:int}}/{{action}}", account_action, methods=["POST"]),
        Route(f"{prefix}/tasks", tasks, methods=["GET"]),
        Route(f"{prefix}/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(f"{prefix}/reset", reset, methods=["POST"]),
        Route(f"{prefix}/config", config, methods=["GET", "PATCH"]),
        Route(f"{prefix}/notifications", notifications, methods=["GET"]),
        Route(f"{prefix}/webhooks", webhooks, methods=["GET"]),
        Route(f"{prefix}/health", health, methods=["GET"]),
        Route(f"{prefix}/images/{{task_id}}/{{name}}", serve_image, methods=["GET"]),
    ]
