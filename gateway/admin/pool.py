"""The admin API's pool routes: its totals, the pool file (apply, export) and the pool's
default pacing profile (`/pool/pacing`: the same object as the pool file's top-level `pacing`;
setting it re-applies it to every account that inherits from it)."""

from __future__ import annotations

from collections import Counter

import yaml
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import pacing
from gateway.admin.handler import body_of, flag, nullable_body_of
from gateway.admin.schemas import hours, ok
from gateway.bodies import read_body
from gateway.errors import InvalidRequestError
from gateway.state import MjGate
from routing.pacedefault import PacingKeys, keys_of
from routing.pacefile import dump_block
from routing.pacing import Pacing
from routing.poolfile import parse_pool_file


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


async def apply_pool(request: Request, gate: MjGate) -> Response:
    dry_run = flag(request, "dry_run")
    raw = await read_body(request, gate.settings.body_limit)
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("body", "must be UTF-8 text (the pool file's YAML)") from exc
    try:
        pool = parse_pool_file(text)
    except yaml.YAMLError as exc:  # the YAML reader's own refusals (e.g. control characters)
        raise InvalidRequestError("body", f"is not a pool file: {exc}") from exc
    changes = await gate.catalog.apply_pool(pool, dry_run=dry_run)
    rows = [{"bot_id": c.bot_id, "action": c.action, "fields": list(c.fields)} for c in changes]
    counts = Counter(c.action for c in changes)
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


async def put_pacing(request: Request, gate: MjGate) -> Response:
    """A whole profile (keys left out: the built-in defaults), or null: no default."""
    body = await nullable_body_of(request, gate, pacing.PacingBody)
    profile = None if body is None else pacing.profile(body)
    return _pacing(profile, await gate.catalog.set_pacing_default(profile))


async def patch_pacing(request: Request, gate: MjGate) -> Response:
    """The keys given over the current default (over the built-in defaults when none)."""
    body = await body_of(request, gate, pacing.PacingBody)
    if not body.model_fields_set:
        raise InvalidRequestError("body", "names no pacing key to change")
    given = pacing.keys(body, field="")
    current = await gate.catalog.pacing_default()
    profile = Pacing(**((keys_of(current) if current is not None else PacingKeys()) | given))
    return _pacing(profile, await gate.catalog.set_pacing_default(profile))


async def delete_pacing(request: Request, gate: MjGate) -> Response:
    return _pacing(None, await gate.catalog.set_pacing_default(None))
