"""Pacing in the admin API: the `pacing` object accounts and the pool's default take, and how
an account's pacing shows in its view.

An account's `pacing` (routing/pacedefault.py): left out of a PUT, the account inherits the
pool's default; an object gives its own keys over the default (PUT: exactly those keys; PATCH:
those keys over its current own ones); null opts it out (unpaced whatever the default). The
pool's default (`/pool/pacing`) is a whole profile: keys left out take the built-in defaults.

The view shows the profile the account runs by, where it came from (its own keys, the keys
inherited, or opted out), today's counts against the caps, the next window change, when it is
next ready, and whether it is available now or why not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import InvalidRequestError
from routing.accounts import AccountStatus, PaceStatus
from routing.model import AccountState
from routing.pacedefault import INHERIT, UNPACED, OwnPacing, PacingKeys, keys_from
from routing.pacefile import dump_block, dump_keys
from routing.pacing import (
    MAX_DAILY_CAP,
    MAX_GAP_SECONDS,
    MAX_WINDOWS,
    Pacing,
    parse_window,
    zone,
)

# HH:MM-HH:MM: its form is checked by routing.pacing.parse_window (`_check`), which says
# what a window looks like; the bound only keeps a stray value from being echoed whole
Window = Annotated[str, Field(max_length=64)]


class DailyCaps(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    fast: int | None = Field(default=None, ge=0, le=MAX_DAILY_CAP)
    relax: int | None = Field(default=None, ge=0, le=MAX_DAILY_CAP)


class PacingBody(BaseModel):
    """A pacing profile's keys; those left out are not given (inherited, kept, or the
    built-in defaults: see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timezone: str | None = Field(default=None, max_length=64)
    active_hours: list[Window] | None = Field(default=None, max_length=MAX_WINDOWS)
    actions_only_hours: list[Window] | None = Field(default=None, max_length=MAX_WINDOWS)
    daily_caps: DailyCaps | None = None
    caps_count_children: bool | None = None
    min_gap_seconds: float | None = Field(
        default=None, ge=0, le=MAX_GAP_SECONDS, allow_inf_nan=False
    )
    gap_jitter_seconds: float | None = Field(
        default=None, ge=0, le=MAX_GAP_SECONDS, allow_inf_nan=False
    )
    tier: Literal["primary", "backup"] | None = None


def keys(body: PacingBody, field: str = "pacing") -> PacingKeys:
    """The keys `body` gives, each checked (400 naming `field`.key when one is invalid)."""
    values: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None:
            raise InvalidRequestError(f"{field}.{name}".lstrip("."), "can't be null (leave it out)")
        if name == "daily_caps":
            caps: DailyCaps = value
            for kind in ("fast", "relax"):
                if kind in caps.model_fields_set:
                    values[f"{kind}_cap"] = getattr(caps, kind)
        else:
            _check(name, value, f"{field}.{name}".lstrip("."))
            values[name] = value
    try:
        return keys_from(values)
    except ValueError as exc:
        raise InvalidRequestError(field or "body", str(exc)) from exc


def _check(name: str, value: object, where: str) -> None:
    """A time zone or windows the profile would refuse, as a 400 naming the key (and the
    window's index in its list)."""
    try:
        if name == "timezone" and isinstance(value, str):
            zone(value)
    except ValueError as exc:
        raise InvalidRequestError(where, str(exc)) from exc
    if name in ("active_hours", "actions_only_hours") and isinstance(value, list):
        for index, window in enumerate(value):
            try:
                parse_window(window)
            except ValueError as exc:
                raise InvalidRequestError(f"{where}.{index}", str(exc)) from exc


def own(given: bool, body: PacingBody | None, current: OwnPacing | None = None) -> OwnPacing:
    """An account's pacing as declared by a body: `given` False (left out) inherits, or keeps
    `current` on a PATCH; null opts out; an object gives its keys (over `current`'s own keys
    on a PATCH)."""
    if not given:
        return current or INHERIT
    if body is None:
        return UNPACED
    if current is not None and not body.model_fields_set:  # a PATCH of no key: nothing
        return current
    base = current.keys if current is not None and current.keys is not None else PacingKeys()
    return OwnPacing(keys=base | keys(body))


def profile(body: PacingBody) -> Pacing:
    """A whole profile (the pool's default): keys left out take the built-in defaults."""
    return Pacing(**keys(body, field=""))


def _inheritance(a: AccountStatus) -> dict[str, Any]:
    mine = a.own_pacing or INHERIT
    names = [f"daily_caps.{n.removesuffix('_cap')}" if n.endswith("_cap") else n
             for n in a.inherited]  # fmt: skip
    return {"own": dump_keys(mine.keys or PacingKeys()), "inherited": names,
            "opted_out": mine.off}  # fmt: skip


def _capped(a: AccountStatus, pace: PaceStatus, pacing: Pacing) -> list[str]:
    """The classes (fast, relax) at their daily cap."""
    return [kind for kind, today, cap in (("fast", pace.fast_today, pacing.fast_cap),
                                          ("relax", pace.relax_today, pacing.relax_cap))
            if cap is not None and today >= cap]  # fmt: skip


def pacing_view(a: AccountStatus, iso: Callable[[float | None], str | None]) -> dict[str, Any]:
    """The view's `pacing` (the profile it runs by), `pacing_source`, `pace` and
    `available` entries. Instants pacing waits for are shown rounded up to the second: never
    a time already past while the account is still held."""

    def until(seconds: float | None) -> str | None:
        return iso(None if seconds is None else math.ceil(seconds))

    p = a.pace
    if a.state is not AccountState.ACTIVE:
        why = a.state.value
        if a.state_until:
            why += f" until {until(a.state_until)}"
    else:
        why = p.held if p is not None else ""
        if why and p is not None and p.ready_at is not None:
            why += f" until {until(p.ready_at)}"
    available: dict[str, Any] = {"now": not why, "why_not": why}
    if not why and p is not None and a.pacing is not None:  # one class at its cap
        capped = _capped(a, p, a.pacing)
        if len(capped) == 1:
            other = "relax" if capped[0] == "fast" else "fast"
            available["only"] = f"{other} only: {capped[0]} cap reached until {until(p.day_ends)}"
    view: dict[str, Any] = {
        "pacing": dump_block(a.pacing) if a.pacing is not None else None,
        "pacing_source": _inheritance(a),
        "pace": None,
        "available": available,
    }
    if p is not None and a.pacing is not None:
        view["pace"] = {
            "phase": p.phase, "phase_until": until(p.phase_until), "next_phase": p.next_phase,
            "today": {"fast": p.fast_today, "relax": p.relax_today},
            "caps": {"fast": a.pacing.fast_cap, "relax": a.pacing.relax_cap},
            "day_ends": until(p.day_ends), "gap_until": until(p.gap_until),
            "held": p.held, "ready_at": until(p.ready_at),
        }  # fmt: skip
    return view
