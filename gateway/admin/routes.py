"""The operator API, mounted at `/admin/v1` (docs/operators.md): which route runs which
handler, and the admin API served on its own port.

Every route needs the admin token (`gateway.admin.handler.admin`). Answers are GoAPI's envelope
(`{"code", "data", "message"}`); errors are raised and turned into the error envelope by the
app's handler table, routing's included. Handlers: accounts in `gateway.admin.accounts`, the
pool (its file and its default pacing) in `gateway.admin.pool`, client keys in
`gateway.admin.keys`, tasks and GoAPI's notification settings here. Bodies and views (and
their time formats) are in `gateway.admin.schemas`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from gateway.admin import accounts, keys, pool
from gateway.admin.audit import WriteHandler, audited
from gateway.admin.handler import Handler, admin
from gateway.admin.schemas import ok, task_view
from gateway.api.passthrough import own_webhook
from gateway.errors import NotFoundError
from gateway.headerlimit import HeaderLimit
from gateway.nowebsocket import websocket_refusal
from gateway.state import MjGate
from gateway.taskrecord import TaskRecord
from gateway.webhooks.credentials import goapi_secret, goapi_token


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

    def write(path: str, action: str, handler: WriteHandler, method: str) -> Route:
        """A route that changes something: its one audit line (gateway.admin.audit)."""
        return route(path, audited(action, handler), method)

    return [
        route("/accounts", accounts.list_accounts, "GET"),
        route("/accounts/{bot_id}", accounts.show_account, "GET"),
        write("/accounts/{bot_id}", "account_put", accounts.put_account, "PUT"),
        write("/accounts/{bot_id}", "account_patch", accounts.patch_account, "PATCH"),
        write("/accounts/{bot_id}", "account_remove", accounts.delete_account, "DELETE"),
        write("/accounts/{bot_id}/state", "account_state", accounts.set_state, "POST"),
        route("/keys", keys.list_keys, "GET"),
        write("/keys", "key_create", keys.create_key, "POST"),
        write("/keys/{key_id}", "key_patch", keys.patch_key, "PATCH"),
        write("/keys/{key_id}", "key_revoke", keys.revoke_key, "DELETE"),
        route("/tasks/{task_id}", show_task, "GET"),
        route("/pool", pool.pool_status, "GET"),
        write("/pool/apply", "pool_apply", pool.apply_pool, "POST"),
        route("/pool/export", pool.export_pool, "GET"),
        route("/pool/pacing", pool.show_pacing, "GET"),
        write("/pool/pacing", "pacing_default_put", pool.put_pacing, "PUT"),
        write("/pool/pacing", "pacing_default_patch", pool.patch_pacing, "PATCH"),
        write("/pool/pacing", "pacing_default_remove", pool.delete_pacing, "DELETE"),
        route("/notifications", notifications, "GET"),
    ]


def router() -> Router:
    """The admin routes; a path with a trailing slash is no route (no redirect)."""
    return Router(routes=routes(), redirect_slashes=False)


def admin_only_app(main: Starlette) -> Starlette:
    """The admin API alone, for serving it on its own port next to `main` in one process.

    It shares `main`'s state (so `state.mjgate`, set by main's lifespan), handler table and
    middleware; it has no lifespan of its own."""
    app = Starlette(
        routes=[websocket_refusal(), Mount("/admin/v1", app=router())],
        exception_handlers=main.exception_handlers,
        middleware=main.user_middleware,
    )
    app.state = main.state
    return app
