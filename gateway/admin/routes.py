"""The operator API, mounted at `/admin/v1` (docs/operators.md): which route runs which
handler, and the admin API served on its own port.

Every route needs the admin token (`gateway.admin.handler.admin`). Answers are GoAPI's envelope
(`{"code", "data", "message"}`); errors are raised and turned into the error envelope by the
app's handler table, routing's included. Handlers: accounts in `gateway.admin.accounts`, the
pool (its file and its default pacing) in `gateway.admin.pool`, keys, tasks and GoAPI's
notification settings here. Bodies and views (and their time formats) are in
`gateway.admin.schemas`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.admin import accounts, pool
from gateway.admin.handler import Handler, admin, body_of
from gateway.admin.schemas import KeyBody, ok, task_view
from gateway.api.passthrough import own_webhook
from gateway.errors import NotFoundError
from gateway.headerlimit import HeaderLimit
from gateway.keys.store import KeyPolicy
from gateway.keys.tenancy import tenancy_policy
from gateway.state import MjGate
from gateway.taskrecord import TaskRecord
from gateway.webhooks.credentials import goapi_secret, goapi_token


async def create_key(request: Request, gate: MjGate) -> Response:
    body = await body_of(request, gate, KeyBody)
    policy = KeyPolicy(
        **tenancy_policy(body),
        allowed_modes=None if body.allowed_modes is None else frozenset(body.allowed_modes),
        tags=tuple(body.tags),
        staged_limit=body.staged_limit,
        rate_per_minute=body.rate_per_minute,
        passthrough_models=tuple(body.passthrough_models),
        passthrough_foreign_ids=body.passthrough_foreign_ids,
    )
    info, secret = await gate.clients.create(body.name, policy)
    return ok({**info.to_dict(), "secret": secret}, 201)


async def list_keys(request: Request, gate: MjGate) -> Response:
    return ok({"keys": [info.to_dict() for info in await gate.clients.list()]})


async def revoke_key(request: Request, gate: MjGate) -> Response:
    kid = request.path_params["key_id"]
    if not await gate.clients.revoke(kid):
        raise NotFoundError(f"no managed key with id {kid}", key_id=kid)
    return ok({"id": kid, "revoked": True})


async def show_task(request: Request, gate: MjGate) -> Response:
    task_id = request.path_params["task_id"]
    record: TaskRecord | None = await gate.records.load(task_id)
    if record is None:
        raise NotFoundError(f"no task {task_id} in mjgate's records", task_id=task_id)
    # as fresh as a client's GET would see it (refreshed from upstream only when stale)
    record = await gate.tasks.checker.refresh(record)
    return ok(task_view(record, own_webhook(gate.settings)))


async def notifications(request: Request, gate: MjGate) -> Response:
    """Where GoAPI should send HYA account notifications (its dashboard's webhook setting)."""
    path = f"/webhooks/goapi/notifications/{goapi_token(gate.settings, 'notifications')}"
    public: str | None = gate.settings.public_url
    return ok({"url": f"{public}{path}" if public else None, "path": path,
                "secret": goapi_secret(gate.settings)})  # fmt: skip


def routes() -> list[BaseRoute]:
    """The admin API's routes, relative to its mount point (`/admin/v1`)."""

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(path, admin(handler), methods=[method], middleware=[Middleware(HeaderLimit)])

    return [
        route("/accounts", accounts.list_accounts, "GET"),
        route("/accounts/{bot_id}", accounts.show_account, "GET"),
        route("/accounts/{bot_id}", accounts.put_account, "PUT"),
        route("/accounts/{bot_id}", accounts.patch_account, "PATCH"),
        route("/accounts/{bot_id}", accounts.delete_account, "DELETE"),
        route("/accounts/{bot_id}/state", accounts.set_state, "POST"),
        route("/keys", list_keys, "GET"),
        route("/keys", create_key, "POST"),
        route("/keys/{key_id}", revoke_key, "DELETE"),
        route("/tasks/{task_id}", show_task, "GET"),
        route("/pool", pool.pool_status, "GET"),
        route("/pool/apply", pool.apply_pool, "POST"),
        route("/pool/export", pool.export_pool, "GET"),
        route("/pool/pacing", pool.show_pacing, "GET"),
        route("/pool/pacing", pool.put_pacing, "PUT"),
        route("/pool/pacing", pool.patch_pacing, "PATCH"),
        route("/pool/pacing", pool.delete_pacing, "DELETE"),
        route("/notifications", notifications, "GET"),
    ]


def admin_only_app(main: Starlette) -> Starlette:
    """The admin API alone, for serving it on its own port next to `main` in one process.

    It shares `main`'s state (so `state.mjgate`, set by main's lifespan), handler table and
    middleware; it has no lifespan of its own."""
    app = Starlette(
        routes=[Mount("/admin/v1", routes=routes())],
        exception_handlers=main.exception_handlers,
        middleware=main.user_middleware,
    )
    app.state = main.state
    return app
