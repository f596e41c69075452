"""The admin API's shapes: the JSON bodies it accepts (pydantic, strict, every unknown field
refused) and the views it answers with. Times go out as ISO 8601 UTC strings and come in as
ISO 8601 or unix seconds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from starlette.responses import Response

from gateway.admin.pacing import PacingBody, pacing_view
from gateway.api.redact import OwnWebhook, scrub_task
from gateway.errors import InvalidRequestError
from gateway.keys.tenancy import TenancyBody
from gateway.taskrecord import TaskRecord
from routing.accounts import MAX_SLOTS, MAX_WEIGHT, AccountStatus
from routing.model import AccountState, Mode, Plan, Setting

Model = TypeVar("Model", bound=BaseModel)
Instant = Annotated[datetime, Strict(False)]  # ISO 8601 or unix seconds
FileState = Literal["active", "draining", "paused", "disabled"]

# -- payloads ---------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AccountBody(_Body):
    """PUT: an account's whole definition, the pool file's fields (None: the plan's default)."""

    bot_id: int | None = None  # optional; must match the path when given
    name: str = Field(default="", max_length=200)
    plan: Plan = Plan.STANDARD
    setting: Setting = Setting.FAST
    fast_hours_left: float | None = Field(default=None, ge=0, lt=1e6, allow_inf_nan=False)
    renews_at: Instant | None = None
    fast_slots: int | None = Field(default=None, ge=0, le=MAX_SLOTS)
    relax_slots: int | None = Field(default=None, ge=0, le=MAX_SLOTS)
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default=[], max_length=32
    )
    state: FileState = "active"
    pacing: PacingBody | None = None  # gateway/admin/pacing.py: absent inherits, null: off


class AccountPatch(_Body):
    """PATCH: only the fields given change. fast time and state apply at once, always."""

    name: str | None = Field(default=None, max_length=200)
    plan: Plan | None = None
    setting: Setting | None = None
    fast_hours_left: float | None = Field(default=None, ge=0, lt=1e6, allow_inf_nan=False)
    renews_at: Instant | None = None
    fast_slots: int | None = Field(default=None, ge=0, le=MAX_SLOTS)
    relax_slots: int | None = Field(default=None, ge=0, le=MAX_SLOTS)
    weight: int | None = Field(default=None, ge=1, le=MAX_WEIGHT)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=32
    )
    state: FileState | None = None
    pacing: PacingBody | None = None  # keys over its own; null: off (gateway/admin/pacing.py)
    reason: str = Field(default="", max_length=200)


class StateBody(_Body):
    state: AccountState
    until: Instant | None = None  # cooling only: when it becomes active again
    reason: str = Field(default="", max_length=200)


class KeyBody(TenancyBody):
    name: str = Field(min_length=1, max_length=100)
    allowed_modes: list[Mode] | None = Field(default=None, min_length=1)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default=[], max_length=32
    )
    staged_limit: int | None = Field(default=None, ge=1, le=100_000)
    rate_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    passthrough_models: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default=[], max_length=64
    )
    passthrough_foreign_ids: bool = False


def parse(model: type[Model], raw: bytes) -> Model:
    """Validate a JSON body; the first problem becomes a 400 naming its field."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = {
            "extra_forbidden": "is not a known field",
            "missing": "is required",
            "json_invalid": "is not valid JSON",
            "model_type": "must be a JSON object",
        }.get(error["type"], error["msg"])
        raise InvalidRequestError(field, message[:1].lower() + message[1:]) from exc


# -- views ------------------------------------------------------------------------------------


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def until(seconds: float | None) -> str | None:
    """An instant something is held until, rounded up to the second: never shown as a time
    already past while it still holds (a cooldown's end, a pacing rule's)."""
    return iso(None if seconds is None else math.ceil(seconds))


def unix(instant: datetime | None) -> float | None:
    if instant is None:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)  # like the pool file: no offset means UTC
    return round(instant.timestamp(), 3)


def hours(seconds: int | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def account_view(a: AccountStatus, *, history: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "bot_id": a.bot_id, "name": a.name, "plan": a.plan.value,
        "setting": a.setting.value, "declared_setting": a.declared_setting.value,
        "state": a.state.value, "state_reason": a.state_reason,
        "state_until": until(a.state_until),
        "fast_seconds_left": a.fast_seconds_left, "fast_hours_left": hours(a.fast_seconds_left),
        "fast_seconds_reserved": a.fast_seconds_reserved, "renews_at": iso(a.renews_at),
        "slots": {"fast": a.fast_slots, "relax": a.relax_slots},
        "in_flight": {"fast": a.fast_in_flight, "relax": a.relax_in_flight},
        "weight": a.weight, "tags": list(a.tags),
        "declared": {"fast_hours_left": hours(a.declared_fast_seconds),
                     "state": a.declared_state.value if a.declared_state else None,
                     "renews_at": iso(a.declared_renews_at)},
    }  # fmt: skip
    view |= pacing_view(a, iso)
    if history:
        view["history"] = [_event(entry) for entry in a.history]
    return view


def _event(entry: Mapping[str, Any]) -> dict[str, Any]:
    at = entry.get("at")
    return {**entry, "at": iso(float(at)) if isinstance(at, int | float) else at}


def task_view(r: TaskRecord, webhook: OwnWebhook) -> dict[str, Any]:
    """A task's record for the operator; the upstream task without mjgate's own webhook."""
    return {
        "task_id": r.task_id, "client_id": r.client_id, "task_type": r.task_type,
        "status": r.status, "requested_mode": r.requested_mode, "mode": r.mode,
        "bot_id": r.bot_id, "decision": r.decision or "", "upstream_id": r.upstream_id,
        "parent_id": r.parent_id, "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "error": {"type": r.error_type, "message": r.error_message} if r.error_type else None,
        "request": r.request,
        # the client's endpoint, never its secret
        "webhook": {"endpoint": r.webhook.get("endpoint", "")} if r.webhook else None,
        "history": [_event(entry) for entry in r.history],
        "upstream_task": scrub_task(r.task, webhook) if r.task else r.task,
    }  # fmt: skip


def ok(data: Any, status: int = 200) -> Response:
    body = {"code": status, "data": data, "message": "success"}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
