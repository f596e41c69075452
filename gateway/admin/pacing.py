"""Pacing in the admin API: the `pacing` object accounts take (PUT: the whole profile; PATCH:
the keys given, over the current one; null: no pacing) and how an account's pacing shows in
its view (the profile, today's counts against the caps, the next window change, when it is
next ready, and whether it is available now or why not)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidRequestError
from routing.accounts import AccountStatus
from routing.model import AccountState
from routing.pacefile import dump_block
from routing.pacing import MAX_GAP_SECONDS, Pacing, Tier

Window = Annotated[str, Field(min_length=11, max_length=11)]  # HH:MM-HH:MM


class DailyCaps(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    fast: int | None = Field(default=None, ge=0, le=1_000_000)
    relax: int | None = Field(default=None, ge=0, le=1_000_000)


class PacingBody(BaseModel):
    """An account's pacing profile; keys left out keep their default (PUT) or current
    value (PATCH)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timezone: str | None = Field(default=None, max_length=64)
    active_hours: list[Window] | None = Field(default=None, max_length=24)
    actions_only_hours: list[Window] | None = Field(default=None, max_length=24)
    daily_caps: DailyCaps | None = None
    caps_count_children: bool | None = None
    min_gap_seconds: float | None = Field(default=None, ge=0, le=MAX_GAP_SECONDS)
    gap_jitter_seconds: float | None = Field(default=None, ge=0, le=MAX_GAP_SECONDS)
    tier: Literal["primary", "backup"] | None = None


def profile(body: PacingBody | None, base: Pacing | None = None) -> Pacing | None:
    """The profile `body` gives over `base` (None: the defaults); body None: no pacing."""
    if body is None:
        return None
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None:
            raise InvalidRequestError(f"pacing.{name}", "can't be null (leave it out)")
        if name == "daily_caps":
            caps: DailyCaps = value
            if "fast" in caps.model_fields_set:
                values["fast_cap"] = caps.fast
            if "relax" in caps.model_fields_set:
                values["relax_cap"] = caps.relax
        elif name in ("active_hours", "actions_only_hours"):
            values[name] = tuple(value)
        elif name == "tier":
            values[name] = Tier(value)
        else:
            values[name] = value
    try:
        current = dump_fields(base) if base is not None else {}
        return Pacing(**(current | values))
    except ValueError as exc:
        raise InvalidRequestError("pacing", str(exc)) from exc


def dump_fields(p: Pacing) -> dict[str, Any]:
    return {
        "timezone": p.timezone,
        "active_hours": p.active_hours,
        "actions_only_hours": p.actions_only_hours,
        "fast_cap": p.fast_cap,
        "relax_cap": p.relax_cap,
        "caps_count_children": p.caps_count_children,
        "min_gap_seconds": p.min_gap_seconds,
        "gap_jitter_seconds": p.gap_jitter_seconds,
        "tier": p.tier,
    }


def pacing_view(a: AccountStatus, iso: Any) -> dict[str, Any]:
    """The view's `pacing`, `pace` and `available` entries."""
    if a.state is not AccountState.ACTIVE:
        why = a.state.value
        if a.state_until:
            why += f" until {iso(a.state_until)}"
    else:
        why = a.pace.held if a.pace is not None else ""
        if why and a.pace is not None and a.pace.ready_at is not None:
            why += f" until {iso(a.pace.ready_at)}"
    view: dict[str, Any] = {
        "pacing": dump_block(a.pacing) if a.pacing is not None else None,
        "pace": None,
        "available": {"now": not why, "why_not": why},
    }
    if a.pace is not None and a.pacing is not None:
        p = a.pace
        view["pace"] = {
            "phase": p.phase, "phase_until": iso(p.phase_until), "next_phase": p.next_phase,
            "today": {"fast": p.fast_today, "relax": p.relax_today},
            "caps": {"fast": a.pacing.fast_cap, "relax": a.pacing.relax_cap},
            "day_ends": iso(p.day_ends), "gap_until": iso(p.gap_until),
            "held": p.held, "ready_at": iso(p.ready_at),
        }  # fmt: skip
    return view
