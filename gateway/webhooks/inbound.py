"""Webhooks from GoAPI: task updates for tasks mjgate sent, and HYA account notifications.

mjgate gives GoAPI the endpoint `<MJGATE_PUBLIC_URL>/webhooks/goapi/tasks/<token>` and the
secret it expects back in `x-webhook-secret`; both are derived from MJGATE_WEBHOOK_SECRET (or
the GoAPI key when unset), so every replica agrees without coordination. Account
notifications arrive at `/webhooks/goapi/notifications/<token>` (the URL to paste into GoAPI's
HYA dashboard is shown by `mjgate pool notifications`, `GET /admin/v1/notifications`). Both are
idempotent: a repeated delivery changes nothing.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import logs
from gateway.bodies import json_object, read_body
from gateway.errors import ForbiddenError, InvalidRequestError, NotFoundError
from gateway.settings import Settings
from gateway.state import MjGate, state_of
from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.errors import AccountNotFoundError, StoreError
from routing.model import AccountState


def _ok() -> Response:
    return Response(b'{"code":200,"data":null,"message":"success"}', media_type="application/json")


def _check(request: Request, settings: Settings, kind: str) -> None:
    """The path token must match; so must `x-webhook-secret` when sent. Task webhooks always
    carry the secret mjgate gave GoAPI; whether GoAPI sends one with account notifications is
    unconfirmed, so for those the (secret, derived) path token alone is accepted."""
    token = str(request.path_params.get("token", ""))
    # bytes: compare_digest refuses str with non-ASCII characters (a client can send them)
    if not hmac.compare_digest(token.encode(), goapi_token(settings, kind).encode()):
        raise NotFoundError("no such webhook")
    sent = request.headers.get("x-webhook-secret")
    if sent is None and kind == "notifications":
        return
    if not hmac.compare_digest((sent or "").encode(), goapi_secret(settings).encode()):
        raise ForbiddenError("webhook secret does not match")


async def _json(request: Request) -> dict[str, Any]:
    return json_object(await read_body(request, state_of(request).settings.body_limit))


async def task_webhook(request: Request) -> Response:
    app = state_of(request)
    _check(request, app.settings, "tasks")
    body = await _json(request)
    task = body.get("data")
    if not isinstance(task, dict) or not isinstance(task.get("task_id"), str):
        raise InvalidRequestError("data.task_id", "is required")
    try:
        record = await app.records.by_upstream_id(task["task_id"])
        if record is None:
            logs.event("webhook_unknown_task")
            return _ok()
        if record.terminal:  # news after the end (the first terminal news won): nothing to do
            return _ok()
        await app.tasks.tracker.apply(record, task, source="webhook")
    except StoreError:
        # GoAPI won't retry a refused webhook: keep the news for the tracker to apply as soon
        # as Redis answers again, then refuse (503) as usual
        app.tasks.handoff.keep_news(task)
        raise
    return _ok()


async def notification_webhook(request: Request) -> Response:
    app = state_of(request)
    _check(request, app.settings, "notifications")
    body = await _json(request)
    kind = str(body.get("type") or "")
    raw_detail = body.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    app.metrics.notification(kind)
    bot_id = detail.get("bot_id")
    if not isinstance(bot_id, int) or isinstance(bot_id, bool):
        logs.event("notification", type=kind, bot_id=None, message=str(body.get("message"))[:200])
        return _ok()
    try:
        await apply_notification(app, kind, bot_id, detail)
    except AccountNotFoundError:
        logs.event("notification_unknown_account", type=kind, bot_id=bot_id)
    return _ok()


async def apply_notification(app: MjGate, kind: str, bot_id: int, detail: dict[str, Any]) -> None:
    """GoAPI's account notifications drive account states (docs/operators.md, 'GoAPI account
    notifications')."""
    store = app.store
    reason = f"goapi: {kind}"
    if kind == "mj_bot_banned":
        until = detail.get("block_until")
        if isinstance(until, int | float) and until > app.clock():
            await store.set_state(
                bot_id,
                AccountState.COOLING,
                until=float(until),
                reason=f"{reason} {detail.get('reason') or ''}".strip(),
            )
            app.metrics.account_event("cooled")
        else:
            await store.set_state(bot_id, AccountState.DISABLED, reason=f"{reason} (no end)")
            app.metrics.account_event("disabled")
    elif kind == "mj_bot_no_fasthour":
        await store.set_fast_time(bot_id, 0, reason=reason)
        app.metrics.account_event("fast_time_exhausted")
    elif kind == "mj_bot_captcha_required":
        await store.set_state(bot_id, AccountState.PAUSED, reason=reason)
        app.metrics.account_event("paused")
    elif kind == "mj_bot_subscription_expired":
        await store.set_state(bot_id, AccountState.DISABLED, reason=reason)
        app.metrics.account_event("disabled")
    logs.event("notification", type=kind, bot_id=bot_id)
