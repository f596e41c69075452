"""The admin API's pool routes: its totals, the pool file (apply, export) and the pool's
default pacing profile (`/pool/pacing`: the same object as the pool file's top-level `pacing`;
setting it re-applies it to every account that inherits from it)."""

from __future__ import annotations

import hashlib
from collections import Counter

import yaml
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import pacing
from gateway.admin.audit import Change, Value
from gateway.admin.handler import body_of, flag, nullable_body_of
from gateway.admin.schemas import hours, ok
from gateway.bodies import read_body
from gateway.errors import InvalidRequestError
from gateway.state import MjGate
from routing.pacedefault import PacingKeys, keys_of
from routing.pacefile import dump_block
from routing.pacing import Pacing
from routing.pooldiff import describe
from routing.poolfile import PoolChange, parse_pool_file

AUDITED_CHANGES = 100  # accounts an apply's audit line describes; the rest are counted


async def pool_status(request: Request, gate: MjGate) -> Response:
    snap = await gate.catalog.pool_snapshot(per_account=False)
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
    default = await gate.catalog.pacing_default()
    return ok({
        "strategy": (await gate.catalog.get_strategy()).value,
        "accounts": sum(snap.accounts.values()),
        "by_plan": dict(by["plan"]), "by_state": dict(by["state"]),
        "by_setting": dict(by["setting"]),
        "fast_seconds_left": snap.fast_seconds_left,
        "fast_hours_left": hours(snap.fast_seconds_left),
        "fast_seconds_usable": snap.fast_seconds_usable,
        "fast_hours_usable": hours(snap.fast_seconds_usable),
        "fast_seconds_held": snap.fast_seconds_held,
        "fast_hours_held": hours(snap.fast_seconds_held),
        "slots": slots, "relax_capable": snap.relax_capable, "staged": snap.staged,
        "pacing": dump_block(default) if default is not None else None,
    })  # fmt: skip


async def apply_pool(request: Request, gate: MjGate, change: Change) -> Response:
    dry_run = change.dry_run = flag(request, "dry_run")
    raw = await read_body(request, gate.settings.body_limit)
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("body", "must be UTF-8 text (the pool file's YAML)") from exc
    try:
        pool = parse_pool_file(text)
    except yaml.YAMLError as exc:  # the YAML reader's own refusals (e.g. control characters)
        raise InvalidRequestError("body", f"is not a pool file: {exc}") from exc
    catalog = gate.catalog
    before = {} if dry_run else {a.bot_id: a for a in await catalog.list_accounts()}
    strategy, default = str(await catalog.get_strategy()), await catalog.pacing_default()
    changes = await catalog.apply_pool(pool, dry_run=dry_run)
    rows = [{"bot_id": c.bot_id, "action": c.action, "fields": list(c.fields)} for c in changes]
    counts = Counter(c.action for c in changes)
    change.wrote = not dry_run  # a dry run changes nothing: no audit line
    made: list[PoolChange] = [c for c in changes if c.action != "unchanged"]
    described: list[Value] = [
        {"bot_id": c.bot_id, "action": c.action,
         "fields": {name: {"from": was, "to": now}
                    for name, was, now in describe(c, before, pool, strategy, default)}}
        for c in made[:AUDITED_CHANGES]
    ]  # fmt: skip
    change.outcome = "applied" if made else "unchanged"
    change.details |= {"counts": dict(counts), "changes": described,
                       "changes_left_off": max(0, len(made) - AUDITED_CHANGES),
                       "file_sha256": hashlib.sha256(raw).hexdigest()}  # fmt: skip
    return ok({"dry_run": dry_run, "changes": rows, "counts": dict(counts)})


async def export_pool(request: Request, gate: MjGate) -> Response:
    return ok({"yaml": await gate.catalog.export_pool()})


# -- the default pacing profile ---------------------------------------------------------------


def _pacing(profile: Pacing | None, updated: list[int] | None = None) -> Response:
    data: dict[str, object] = {"pacing": dump_block(profile) if profile is not None else None}
    if updated is not None:
        data["accounts_updated"] = updated
    return ok(data)


async def show_pacing(request: Request, gate: MjGate) -> Response:
    return _pacing(await gate.catalog.pacing_default())


async def _set_default(gate: MjGate, change: Change, profile: Pacing | None) -> Response:
    """Set the pool's default pacing profile, for the audit log too."""
    was = await gate.catalog.pacing_default()
    updated = await gate.catalog.set_pacing_default(profile)
    block = None if profile is None else dump_block(profile)
    change.diff({"pacing": None if was is None else dump_block(was)}, {"pacing": block})
    change.outcome = "updated" if change.fields else "unchanged"
    change.details["accounts_updated"] = len(updated)
    return _pacing(profile, updated)


async def put_pacing(request: Request, gate: MjGate, change: Change) -> Response:
    """A whole profile (keys left out: the built-in defaults), or null: no default."""
    body = await nullable_body_of(request, gate, pacing.PacingBody)
    return await _set_default(gate, change, None if body is None else pacing.profile(body))


async def patch_pacing(request: Request, gate: MjGate, change: Change) -> Response:
    """The keys given over the current default (over the built-in defaults when none)."""
    body = await body_of(request, gate, pacing.PacingBody)
    if not body.model_fields_set:
        raise InvalidRequestError("body", "names no pacing key to change")
    given = pacing.keys(body, field="")
    current = await gate.catalog.pacing_default()
    profile = Pacing(**((keys_of(current) if current is not None else PacingKeys()) | given))
    return await _set_default(gate, change, profile)


async def delete_pacing(request: Request, gate: MjGate, change: Change) -> Response:
    return await _set_default(gate, change, None)
