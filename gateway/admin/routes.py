"""The operator API, mounted at `/admin/v1` (DESIGN.md section 6; docs/operators.md).

Every route needs `Authorization: Bearer <MJGATE_ADMIN_TOKEN>`, compared in constant time. An
empty token turns the whole API off (404, as if there were no route); a valid client key gets
403. Answers are GoAPI's envelope (`{"code", "data", "message"}`); errors are raised and turned
into the error envelope by the app's handler table, routing's included.

Bodies and views (and their time formats) are in `gateway.admin.schemas`.
"""

from __future__ import annotations

import hmac
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.admin import pacing
from gateway.admin.schemas import (
    AccountBody,
    AccountPatch,
    KeyBody,
    Model,
    StateBody,
    account_view,
    hours,
    ok,
    parse,
    task_view,
    unix,
)
from gateway.api.passthrough import own_webhook
from gateway.bodies import read_body
from gateway.errors import (
    ForbiddenError,
    InvalidKeyError,
    InvalidRequestError,
    MissingKeyError,
    NotFoundError,
)
from gateway.headerlimit import HeaderLimit
from gateway.keys.store import KeyPolicy
from gateway.keys.tenancy import tenancy_policy
from gateway.state import MjGate, state_of
from gateway.taskrecord import TaskRecord
from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.accounts import AccountSpec, AccountStatus
from routing.errors import AccountNotFoundError
from routing.model import AccountState, Plan
from routing.poolfile import parse_pool_file

Handler = Callable[[Request, MjGate], Awaitable[Response]]


# -- auth -------------------------------------------------------------------------------------


def admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check the admin token, then run `handler(request, gate)`."""

    async def endpoint(request: Request) -> Response:
        gate = state_of(request)
        token: str = gate.settings.admin_token
        if not token:  # the admin API is off
            raise NotFoundError(f"no route {request.url.path}")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else ""
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            return await handler(request, gate)
        presented = secret or request.headers.get("x-api-key", "")
        if not presented:
            raise MissingKeyError("the admin API needs Authorization: Bearer <admin token>")
        if await gate.clients.lookup(presented) is not None:
            raise ForbiddenError("a client key can't use the admin API")
        raise InvalidKeyError("the admin token is not valid")

    endpoint.__name__ = handler.__name__
    return endpoint


_BOT_ID = re.compile(r"[0-9]{1,16}")  # ASCII digits only ("²".isdigit() is true)


def _bot_id(request: Request) -> int:
    raw = request.path_params["bot_id"]
    if not _BOT_ID.fullmatch(raw) or not 1 <= int(raw) <= 2**53:
        raise InvalidRequestError("bot_id", "must be a positive integer")
    return int(raw)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter; `?force` alone means true."""
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.strip().lower() in ("", "1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidRequestError(name, "must be true or false")


async def _body(request: Request, gate: MjGate, model: type[Model]) -> Model:
    return parse(model, await read_body(request, gate.settings.body_limit))


async def _account(gate: MjGate, bot_id: int) -> AccountStatus:
    status: AccountStatus | None = await gate.store.get_account(bot_id)
    if status is None:
        raise AccountNotFoundError(bot_id)
    return status


_NULLABLE = frozenset({"renews_at", "fast_slots", "relax_slots", "pacing"})  # null: none


def _renews_at(gate: MjGate, instant: Any) -> float | None:
    """A renewal date, which must be in the future (a past one would renew at once)."""
    seconds = unix(instant)
    if seconds is not None and seconds <= gate.clock():
        raise InvalidRequestError("renews_at", "must be in the future (or null: no renewal)")
    return seconds


def _reason(text: str) -> str:
    return f"operator: {text}" if text else "operator"


# -- accounts ---------------------------------------------------------------------------------


async def list_accounts(request: Request, gate: MjGate) -> Response:
    accounts: list[AccountStatus] = await gate.store.list_accounts()
    state = request.query_params.get("state")
    tag = request.query_params.get("tag")
    rows = [
        a
        for a in sorted(accounts, key=lambda a: a.bot_id)
        if (not state or a.state.value == state) and (not tag or tag in a.tags)
    ]
    return ok({"accounts": [account_view(a, history=False) for a in rows]})


async def show_account(request: Request, gate: MjGate) -> Response:
    return ok(account_view(await _account(gate, _bot_id(request))))


async def put_account(request: Request, gate: MjGate) -> Response:
    bot_id = _bot_id(request)
    body = await _body(request, gate, AccountBody)
    if body.bot_id is not None and body.bot_id != bot_id:
        raise InvalidRequestError("bot_id", f"is {body.bot_id} but the path says {bot_id}")
    if body.plan is Plan.BASIC and body.relax_slots:
        raise InvalidRequestError("relax_slots", "the basic plan has no relax: must be 0")
    spec = AccountSpec(
        bot_id=bot_id, name=body.name, plan=body.plan, setting=body.setting,
        fast_seconds_left=None if body.fast_hours_left is None
        else round(body.fast_hours_left * 3600),
        renews_at=_renews_at(gate, body.renews_at), fast_slots=body.fast_slots,
        relax_slots=body.relax_slots, weight=body.weight, tags=tuple(body.tags),
        state=AccountState(body.state), pacing=pacing.profile(body.pacing))  # fmt: skip
    if spec.state is AccountState.COOLING:
        raise InvalidRequestError(
            "state",
            "cooling needs a deadline: use POST /admin/v1/accounts/{bot_id}/state with until",
        )
    try:
        action: str = await gate.store.apply_account(spec)
    except ValueError as exc:  # limits the store enforces (slots, weight)
        raise InvalidRequestError("account", str(exc)) from exc
    status = await _account(gate, bot_id)
    return ok(
        {"action": action, "account": account_view(status)}, 201 if action == "created" else 200
    )


async def patch_account(request: Request, gate: MjGate) -> Response:
    bot_id = _bot_id(request)
    body = await _body(request, gate, AccountPatch)
    given = body.model_fields_set - {"reason"}
    if not given:
        raise InvalidRequestError("body", "names no field to change")
    for name in given - _NULLABLE:
        if getattr(body, name) is None:
            raise InvalidRequestError(name, "can't be null")
    current = await _account(gate, bot_id)
    definition = given - {"fast_hours_left", "state"}
    if definition:
        plan = body.plan or current.plan
        if plan is Plan.BASIC and body.relax_slots:
            raise InvalidRequestError("relax_slots", "the basic plan has no relax: must be 0")
        keep_slots = plan is current.plan  # a new plan brings its own default slots
        spec = AccountSpec(
            bot_id=bot_id,
            name=current.name,
            plan=current.plan,
            setting=current.declared_setting,
            fast_seconds_left=current.declared_fast_seconds,
            renews_at=current.declared_renews_at,
            fast_slots=current.fast_slots if keep_slots else None,
            relax_slots=current.relax_slots if keep_slots else None,
            weight=current.weight,
            tags=current.tags,
            state=current.declared_state or current.state,
            pacing=current.pacing,
        )
        changes = {name: getattr(body, name) for name in definition}
        if "pacing" in changes:
            changes["pacing"] = pacing.profile(body.pacing, current.pacing)
        if "tags" in changes:
            changes["tags"] = tuple(changes["tags"])
        if "renews_at" in changes:
            changes["renews_at"] = _renews_at(gate, changes["renews_at"])
        await gate.store.apply_account(replace(spec, **changes))
    if body.fast_hours_left is not None:
        await gate.store.set_fast_time(
            bot_id, round(body.fast_hours_left * 3600), reason=_reason(body.reason)
        )
    if body.state is not None:
        await gate.store.set_state(bot_id, AccountState(body.state), reason=_reason(body.reason))
    return ok({"action": "updated", "account": account_view(await _account(gate, bot_id))})


async def delete_account(request: Request, gate: MjGate) -> Response:
    bot_id = _bot_id(request)
    await gate.store.remove_account(bot_id, force=_flag(request, "force"))
    return ok({"bot_id": bot_id, "removed": True})


async def set_state(request: Request, gate: MjGate) -> Response:
    bot_id = _bot_id(request)
    body = await _body(request, gate, StateBody)
    until = unix(body.until)
    if body.state is AccountState.COOLING:
        if until is None:
            raise InvalidRequestError("until", "is required for cooling (when it ends)")
        if until <= gate.clock():
            raise InvalidRequestError("until", "must be in the future")
    elif until is not None:
        raise InvalidRequestError("until", "only cooling has a deadline")
    status = await gate.store.set_state(
        bot_id, body.state, until=until, reason=_reason(body.reason)
    )
    return ok(account_view(status))


# -- keys, tasks, pool ------------------------------------------------------------------------


async def create_key(request: Request, gate: MjGate) -> Response:
    body = await _body(request, gate, KeyBody)
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


async def pool_status(request: Request, gate: MjGate) -> Response:
    snap = await gate.store.pool_snapshot(per_account=False)
    by: dict[str, Counter[str]] = {"plan": Counter(), "state": Counter(), "setting": Counter()}
    for (plan, state, setting), count in snap.accounts.items():
        by["plan"][plan.value] += count
        by["state"][state.value] += count
        by["setting"][setting.value] += count
    slots = {
        kind.value: {
            "capacity": snap.slot_capacity.get(kind, 0),
            "in_use": snap.slots_in_use.get(kind, 0),
        }
        for kind in snap.slot_capacity
    }
    return ok({
        "strategy": (await gate.store.get_strategy()).value,
        "accounts": sum(snap.accounts.values()),
        "by_plan": dict(by["plan"]), "by_state": dict(by["state"]),
        "by_setting": dict(by["setting"]),
        "fast_seconds_left": snap.fast_seconds_left,
        "fast_hours_left": hours(snap.fast_seconds_left),
        "slots": slots, "relax_capable": snap.relax_capable, "staged": snap.staged,
    })  # fmt: skip


async def apply_pool(request: Request, gate: MjGate) -> Response:
    dry_run = _flag(request, "dry_run")
    raw = await read_body(request, gate.settings.body_limit)
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("body", "must be UTF-8 text (the pool file's YAML)") from exc
    try:
        pool = parse_pool_file(text)
    except yaml.YAMLError as exc:  # the YAML reader's own refusals (e.g. control characters)
        raise InvalidRequestError("body", f"is not a pool file: {exc}") from exc
    changes = await gate.store.apply_pool(pool, dry_run=dry_run)
    rows = [{"bot_id": c.bot_id, "action": c.action, "fields": list(c.fields)} for c in changes]
    counts = Counter(c.action for c in changes)
    return ok({"dry_run": dry_run, "changes": rows, "counts": dict(counts)})


async def export_pool(request: Request, gate: MjGate) -> Response:
    text: str = await gate.store.export_pool()
    return ok({"yaml": text})


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
        route("/accounts", list_accounts, "GET"),
        route("/accounts/{bot_id}", show_account, "GET"),
        route("/accounts/{bot_id}", put_account, "PUT"),
        route("/accounts/{bot_id}", patch_account, "PATCH"),
        route("/accounts/{bot_id}", delete_account, "DELETE"),
        route("/accounts/{bot_id}/state", set_state, "POST"),
        route("/keys", list_keys, "GET"),
        route("/keys", create_key, "POST"),
        route("/keys/{key_id}", revoke_key, "DELETE"),
        route("/tasks/{task_id}", show_task, "GET"),
        route("/pool", pool_status, "GET"),
        route("/pool/apply", apply_pool, "POST"),
        route("/pool/export", export_pool, "GET"),
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
