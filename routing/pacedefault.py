"""The pool-wide pacing default and what an account takes from it.

The pool may have one default pacing profile (the pool file's top-level `pacing:`, or the admin
API's `/pool/pacing`: the same object, stored once in Redis). An account declares its own
pacing in one of three ways (`OwnPacing`):

    inherit    no pacing of its own (the file's account has no `pacing` key; the API's body
               leaves `pacing` out): it takes the default whole, and is unpaced without one
    keys       some keys of its own (`pacing: {tier: backup}`): the default overlaid with
               them key by key; without a default, the keys over the built-in defaults
    off        opted out (`pacing: null`): unpaced whatever the default

`effective(default, own)` is the profile the account runs by: the one routing stores on the
account and reads on the hot path. The catalog keeps each account's `OwnPacing` next to it, so
changing the default re-applies it to every account that takes from it (routing/catalog.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict, cast

from routing.pacing import Pacing, Tier

KEY_NAMES = (
    "timezone",
    "active_hours",
    "actions_only_hours",
    "fast_cap",
    "relax_cap",
    "caps_count_children",
    "min_gap_seconds",
    "gap_jitter_seconds",
    "tier",
)


class PacingKeys(TypedDict, total=False):
    """Some keys of a pacing profile: `Pacing`'s keyword arguments."""

    timezone: str
    active_hours: tuple[str, ...]
    actions_only_hours: tuple[str, ...]
    fast_cap: int | None
    relax_cap: int | None
    caps_count_children: bool
    min_gap_seconds: float
    gap_jitter_seconds: float
    tier: Tier


@dataclass(frozen=True)
class OwnPacing:
    """An account's own pacing: `keys` None inherits the whole default; `off` opts out."""

    keys: PacingKeys | None = None
    off: bool = False

    def encode(self) -> str:
        """As the catalog stores it: `inherit`, `off`, or the keys as a JSON object."""
        if self.off:
            return "off"
        if self.keys is None:
            return "inherit"
        return json.dumps(dict(self.keys), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> OwnPacing:
        if text == "off":
            return UNPACED
        if text == "inherit":
            return INHERIT
        return cls(keys=keys_from(json.loads(text)))


INHERIT = OwnPacing()
UNPACED = OwnPacing(off=True)


def keys_of(profile: Pacing) -> PacingKeys:
    """Every key of `profile`."""
    return PacingKeys(
        timezone=profile.timezone,
        active_hours=profile.active_hours,
        actions_only_hours=profile.actions_only_hours,
        fast_cap=profile.fast_cap,
        relax_cap=profile.relax_cap,
        caps_count_children=profile.caps_count_children,
        min_gap_seconds=profile.min_gap_seconds,
        gap_jitter_seconds=profile.gap_jitter_seconds,
        tier=profile.tier,
    )


def keys_from(raw: Mapping[str, object]) -> PacingKeys:
    """Keys read back from JSON (lists become tuples, the tier its enum); ValueError when a
    key is unknown or a value invalid."""
    unknown = set(raw) - set(KEY_NAMES)
    if unknown:
        raise ValueError(f"unknown pacing keys: {', '.join(sorted(unknown))}")
    out = dict(raw)
    for name in ("active_hours", "actions_only_hours"):
        if name in out:
            out[name] = tuple(cast(list[str], out[name]))
    if "tier" in out:
        out["tier"] = Tier(cast(str, out["tier"]))
    for name in ("min_gap_seconds", "gap_jitter_seconds"):
        if isinstance(out.get(name), int | float):
            out[name] = cast(float, out[name]) + 0.0  # -0.0 is 0 (and exported so)
    keys = cast(PacingKeys, out)
    Pacing(**keys)  # every value checked
    return keys


def whole(profile: Pacing | None) -> OwnPacing:
    """A profile given whole as an account's own (None: it inherits)."""
    return INHERIT if profile is None else OwnPacing(keys=keys_of(profile))


def effective(default: Pacing | None, own: OwnPacing) -> Pacing | None:
    """The profile an account runs by (None: unpaced)."""
    if own.off or (default is None and own.keys is None):
        return None
    base = keys_of(default) if default is not None else PacingKeys()
    return Pacing(**(base | (own.keys or PacingKeys())))


def inherited(default: Pacing | None, own: OwnPacing) -> tuple[str, ...]:
    """The keys an account takes from the default (none without one, or when opted out)."""
    if default is None or own.off:
        return ()
    mine = own.keys or PacingKeys()
    return tuple(name for name in KEY_NAMES if name not in mine)


def same(a: Pacing | None, b: Pacing | None) -> bool:
    """Equal as the account hash stores them (gaps in whole milliseconds)."""
    return (a is None) == (b is None) and (a is None or b is None or a.fields() == b.fields())


def encode_default(profile: Pacing) -> str:
    return json.dumps(dict(keys_of(profile)), separators=(",", ":"))


def decode_default(text: str) -> Pacing:
    return Pacing(**keys_from(json.loads(text)))
