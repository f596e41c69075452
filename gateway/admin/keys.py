"""The admin API's client keys (docs/operators.md, "Keys"): create, list, change, revoke.

A change (PATCH) is merged, field by field, with the body that would create the key as it is
stored (`key_body`), and the result is validated as a create body is (`KeyBody`, one place
for the rules) before it replaces the policy. A body naming no field (`{}`, or empty) is 400,
as for an account's PATCH. A field absent keeps its value; `null` sets it
back to what create gives when it is absent (no limit, `UTC`, weight 1, every mode, any
account, never expires); `name` can't be null. The key's usage (quota counters, tasks in
flight) is kept by key id, so a change never resets it. The key's staged tasks take the new
weight, account tags and tasks-in-flight limit (`PoolStore.restage_key`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin.audit import REDACTED, Change
from gateway.admin.handler import body_of
from gateway.admin.schemas import KeyBody, ok, parse
from gateway.bodies import json_object, read_body
from gateway.errors import ForbiddenError, InvalidRequestError, NotFoundError
from gateway.keys.policy import KeyInfo, KeyPolicy
from gateway.keys.tenancy import tenancy_body, tenancy_policy
from gateway.state import MjGate


def key_policy(body: KeyBody) -> KeyPolicy:
    """The policy a valid key body describes."""
    return KeyPolicy(
        **tenancy_policy(body),
        allowed_modes=None if body.allowed_modes is None else frozenset(body.allowed_modes),
        tags=tuple(body.tags),
        staged_limit=body.staged_limit,
        rate_per_minute=body.rate_per_minute,
        passthrough_models=tuple(body.passthrough_models),
        passthrough_foreign_ids=body.passthrough_foreign_ids,
    )


def key_body(info: KeyInfo) -> dict[str, Any]:
    """The create body that gives `info`'s name and policy."""
    policy = info.policy
    return {
        "name": info.name,
        **tenancy_body(policy),
        "allowed_modes": policy.to_dict()["allowed_modes"],
        "tags": list(policy.tags),
        "staged_limit": policy.staged_limit,
        "rate_per_minute": policy.rate_per_minute,
        "passthrough_models": list(policy.passthrough_models),
        "passthrough_foreign_ids": policy.passthrough_foreign_ids,
    }


def patched(info: KeyInfo, change: Mapping[str, Any]) -> KeyInfo:
    """`info` with `change` merged in and validated as a create body (400 naming a field)."""
    merged = key_body(info)
    for name, value in change.items():
        if name not in KeyBody.model_fields:
            raise InvalidRequestError(name, "is not a known field")
        if value is None and name == "name":
            raise InvalidRequestError(name, "can't be null")
        if value is None:
            merged.pop(name)  # what create gives when the field is absent
        else:
            merged[name] = value
    merged = {name: value for name, value in merged.items() if value is not None}
    body = parse(KeyBody, orjson.dumps(merged))
    return replace(info, name=body.name, policy=key_policy(body))


async def create_key(request: Request, gate: MjGate, change: Change) -> Response:
    body = await body_of(request, gate, KeyBody)
    info, secret = await gate.clients.create(body.name, key_policy(body))
    change.target["key_id"], change.outcome = info.id, "created"
    change.diff({}, key_body(info))  # its name and policy; the secret is in the answer only
    return ok({**info.to_dict(), "secret": secret}, 201)


async def list_keys(request: Request, gate: MjGate) -> Response:
    return ok({"keys": [info.to_dict() for info in await gate.clients.list()]})


def logged_id(kid: str) -> str:
    """A key id from a path, for the audit log: an id is 16 hex digits; anything else may be
    a secret pasted in its place, and is not written."""
    return kid if re.fullmatch(r"[0-9a-f]{16}", kid) else REDACTED


def _refuse_static(gate: MjGate, kid: str, what: str) -> None:
    """A static key (MJGATE_CLIENT_KEYS) is not the admin API's to change or revoke."""
    if gate.clients.static.has(kid):
        raise ForbiddenError(f"key {kid} is a static key (MJGATE_CLIENT_KEYS): {what}", key_id=kid)


async def patch_key(request: Request, gate: MjGate, change: Change) -> Response:
    kid = request.path_params["key_id"]
    change.target["key_id"] = logged_id(kid)
    given = json_object(await read_body(request, gate.settings.body_limit) or b"{}")
    if not given:  # as an account's PATCH: a change that names nothing is a mistake
        raise InvalidRequestError("body", "names no field to change")
    _refuse_static(
        gate, kid, "it has no policy to change; create a managed key with the policy instead"
    )
    seen: list[KeyInfo] = []  # the key as stored when the change was made (the last try)

    def patch(stored: KeyInfo) -> KeyInfo:
        seen.append(stored)
        return patched(stored, given)

    info = await gate.clients.update(kid, patch)
    if info is None:
        raise NotFoundError(f"no managed key with id {kid}", key_id=kid)
    change.diff(key_body(seen[-1]), key_body(info))
    change.outcome = "updated" if change.fields else "unchanged"
    policy = info.policy  # its staged tasks follow: a narrower key reaches no more accounts
    await gate.store.restage_key(
        info.id, weight=policy.weight, tags=policy.tags, max_in_flight=policy.quota.max_in_flight
    )
    return ok(info.to_dict())


async def revoke_key(request: Request, gate: MjGate, change: Change) -> Response:
    kid = request.path_params["key_id"]
    change.target["key_id"] = logged_id(kid)
    _refuse_static(gate, kid, "remove it from MJGATE_CLIENT_KEYS and restart to revoke it")
    before = await gate.clients.get(kid)
    if not await gate.clients.revoke(kid):
        raise NotFoundError(f"no managed key with id {kid}", key_id=kid)
    change.outcome = "revoked"
    if before is not None:
        change.details["key_name"] = before.name
    return ok({"id": kid, "revoked": True})
