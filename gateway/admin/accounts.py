"""The admin API's account routes: list, show, create or replace (PUT), change some fields
(PATCH), remove, and put in a state. Bodies and views are in `gateway.admin.schemas`; an
account's pacing as declared (inherit the pool's default, own keys, or off) in
`gateway.admin.pacing`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import pacing
from gateway.admin.audit import Change, Value
from gateway.admin.handler import body_of, bot_id_of, flag
from gateway.admin.schemas import AccountBody, AccountPatch, StateBody, account_view, ok, unix
from gateway.errors import InvalidRequestError
from gateway.state import MjGate
from routing.accounts import AccountSpec, AccountStatus
from routing.errors import AccountNotFoundError
from routing.model import AccountState, Plan
from routing.pooldiff import declared, spec_of

_NULLABLE = frozenset({"renews_at", "fast_slots", "relax_slots", "pacing"})  # null: none


async def _account(gate: MjGate, bot_id: int) -> AccountStatus:
    status = await gate.catalog.get_account(bot_id)
    if status is None:
        raise AccountNotFoundError(bot_id)
    return status


def _renews_at(gate: MjGate, instant: datetime | None) -> float | None:
    """A renewal date, which must be in the future (a past one would renew at once)."""
    seconds = unix(instant)
    if seconds is not None and seconds <= gate.clock():
        raise InvalidRequestError("renews_at", "must be in the future (or null: no renewal)")
    return seconds


def _reason(text: str) -> str:
    return f"operator: {text}" if text else "operator"


def _live(status: AccountStatus) -> dict[str, Value]:
    """The live figures an operator sets at once (PATCH, POST .../state), for the audit log."""
    return {"fast_seconds_left": status.fast_seconds_left, "state": str(status.state),
            "state_until": status.state_until}  # fmt: skip


async def list_accounts(request: Request, gate: MjGate) -> Response:
    accounts = await gate.catalog.list_accounts()
    state = request.query_params.get("state")
    tag = request.query_params.get("tag")
    rows = [
        a
        for a in sorted(accounts, key=lambda a: a.bot_id)
        if (not state or a.state.value == state) and (not tag or tag in a.tags)
    ]
    return ok({"accounts": [account_view(a, history=False) for a in rows]})


async def show_account(request: Request, gate: MjGate) -> Response:
    return ok(account_view(await _account(gate, bot_id_of(request))))


async def put_account(request: Request, gate: MjGate, change: Change) -> Response:
    bot_id = bot_id_of(request)
    change.target["bot_id"] = bot_id
    body = await body_of(request, gate, AccountBody)
    if body.bot_id is not None and body.bot_id != bot_id:
        raise InvalidRequestError("bot_id", f"is {body.bot_id} but the path says {bot_id}")
    if body.plan is Plan.BASIC and body.relax_slots:
        raise InvalidRequestError("relax_slots", "the basic plan has no relax: must be 0")
    own = pacing.own("pacing" in body.model_fields_set, body.pacing)
    spec = AccountSpec(
        bot_id=bot_id, name=body.name, plan=body.plan, setting=body.setting,
        fast_seconds_left=None if body.fast_hours_left is None
        else round(body.fast_hours_left * 3600),
        renews_at=_renews_at(gate, body.renews_at), fast_slots=body.fast_slots,
        relax_slots=body.relax_slots, weight=body.weight, tags=tuple(body.tags),
        state=AccountState(body.state), own_pacing=own)  # fmt: skip
    if spec.state is AccountState.COOLING:
        raise InvalidRequestError(
            "state",
            "cooling needs a deadline: use POST /admin/v1/accounts/{bot_id}/state with until",
        )
    before = await gate.catalog.get_account(bot_id)
    try:
        action = await gate.catalog.apply_account(spec, why="operator")
    except ValueError as exc:  # limits the catalog enforces (slots, weight)
        raise InvalidRequestError("account", str(exc)) from exc
    status = await _account(gate, bot_id)
    change.outcome = action  # the definition as declared (the pool file's fields)
    change.diff(declared(before) if before is not None else {}, declared(status))
    return ok(
        {"action": action, "account": account_view(status)}, 201 if action == "created" else 200
    )


async def patch_account(request: Request, gate: MjGate, change: Change) -> Response:
    bot_id = bot_id_of(request)
    change.target["bot_id"] = bot_id
    body = await body_of(request, gate, AccountPatch)
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
        spec = spec_of(current)
        if plan is not current.plan:  # a new plan brings its own default slots
            spec = replace(spec, fast_slots=None, relax_slots=None)
        changes = {name: getattr(body, name) for name in definition - {"pacing"}}
        if "pacing" in definition:
            changes["own_pacing"] = pacing.own(True, body.pacing, current.own_pacing)
        if "tags" in changes:
            changes["tags"] = tuple(changes["tags"])
        if "renews_at" in changes:
            changes["renews_at"] = _renews_at(gate, changes["renews_at"])
        await gate.catalog.apply_account(replace(spec, **changes), why=_reason(body.reason))
    if body.fast_hours_left is not None:
        await gate.store.set_fast_time(
            bot_id, round(body.fast_hours_left * 3600), reason=_reason(body.reason)
        )
    if body.state is not None:
        await gate.store.set_state(bot_id, AccountState(body.state), reason=_reason(body.reason))
    status = await _account(gate, bot_id)
    if definition:  # every declared field: a new plan brings its own slots
        change.diff(declared(current), declared(status))
    live = {"fast_seconds_left"} if body.fast_hours_left is not None else set()
    change.diff(_live(current), _live(status), live | ({"state"} if body.state else set()))
    change.outcome = "updated" if change.fields else "unchanged"
    change.details["reason"] = body.reason
    return ok({"action": change.outcome, "account": account_view(status)})


async def delete_account(request: Request, gate: MjGate, change: Change) -> Response:
    bot_id = bot_id_of(request)
    change.target["bot_id"] = bot_id
    force = flag(request, "force")
    before = await _account(gate, bot_id)
    await gate.catalog.remove_account(bot_id, force=force)
    change.outcome, change.details["force"] = "removed", force
    change.diff(declared(before), {})  # what it was: enough to add it back
    return ok({"bot_id": bot_id, "removed": True})


async def set_state(request: Request, gate: MjGate, change: Change) -> Response:
    bot_id = bot_id_of(request)
    change.target["bot_id"] = bot_id
    body = await body_of(request, gate, StateBody)
    until = unix(body.until)
    if body.state is AccountState.COOLING:
        if until is None:
            raise InvalidRequestError("until", "is required for cooling (when it ends)")
        if until <= gate.clock():
            raise InvalidRequestError("until", "must be in the future")
    elif until is not None:
        raise InvalidRequestError("until", "only cooling has a deadline")
    before = await _account(gate, bot_id)
    status = await gate.catalog.set_state(
        bot_id, body.state, until=until, reason=_reason(body.reason)
    )
    change.diff(_live(before), _live(status), ("state", "state_until"))
    change.outcome = "updated" if change.fields else "unchanged"
    change.details["reason"] = body.reason
    return ok(account_view(status))
