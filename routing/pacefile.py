"""The pool file's `pacing` blocks: a pool-wide default and each account's overrides.

    pacing:                         # the default for every account (optional)
      timezone: Europe/Berlin       # IANA name (default UTC)
      active_hours: [09:00-23:30]   # local windows; one may cross midnight; [] = always
      actions_only_hours: []        # child tasks of the account's own grids only
      daily_caps: {fast: 150, relax: 300}   # jobs per local day; fast counts turbo
      caps_count_children: true
      min_gap_seconds: 20           # after a submission, no new root task before
      gap_jitter_seconds: 40        #   min_gap + a random part of the jitter
      tier: primary                 # primary | backup
    accounts:
      - bot_id: 1201
        pacing: {tier: backup}      # overrides keys of the default, keeps the rest
      - bot_id: 1202
        pacing: null                # opts out of the default: unpaced

An account has pacing when the file has a default (and the account doesn't opt out) or the
account a `pacing` block (routing/pacedefault.py: inheritance). Problems are `PoolFileError`s
with the line of the offending node, as in routing/poolfile.py.
"""

from __future__ import annotations

from typing import Any

import yaml

from routing.errors import PoolFileError
from routing.pacedefault import PacingKeys, keys_from, keys_of
from routing.pacing import (
    MAX_DAILY_CAP,
    MAX_GAP_SECONDS,
    MAX_WINDOWS,
    Pacing,
    Tier,
    parse_window,
    zone,
)

KEYS = (
    "timezone",
    "active_hours",
    "actions_only_hours",
    "daily_caps",
    "caps_count_children",
    "min_gap_seconds",
    "gap_jitter_seconds",
    "tier",
)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise PoolFileError(_line(node), "expected a single value")
    return loader.construct_object(node)


def _windows(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise PoolFileError(_line(node), "expected a list of windows like 09:00-23:30")
    if len(node.value) > MAX_WINDOWS:
        raise PoolFileError(_line(node), f"at most {MAX_WINDOWS} windows in a list")
    out = []
    for item in node.value:
        value = _value(loader, item)
        try:
            parse_window(str(value))
        except ValueError as exc:
            raise PoolFileError(_line(item), str(exc)) from exc
        out.append(str(value).strip())
    return tuple(out)


def _cap(loader: yaml.SafeLoader, node: yaml.Node) -> int | None:
    value = _value(loader, node)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAILY_CAP:
        raise PoolFileError(
            _line(node), f"expected a whole number of jobs from 0 to {MAX_DAILY_CAP}, or null"
        )
    return value


def _seconds(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    value = _value(loader, node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PoolFileError(_line(node), "expected a number of seconds")
    if not 0 <= value <= MAX_GAP_SECONDS:
        raise PoolFileError(_line(node), f"expected seconds from 0 to {MAX_GAP_SECONDS}")
    return float(value)


def parse_block(loader: yaml.SafeLoader, node: yaml.Node) -> PacingKeys:
    """A `pacing` mapping as keyword arguments of `Pacing` (only the keys it gives)."""
    if not isinstance(node, yaml.MappingNode):
        raise PoolFileError(_line(node), "expected pacing as a mapping of keys to values")
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in KEYS:
            known = ", ".join(KEYS)
            raise PoolFileError(_line(key_node), f"unknown pacing key '{key}' (known: {known})")
        if key in seen:
            raise PoolFileError(_line(key_node), f"'{key}' given twice")
        seen.add(key)
        if key == "timezone":
            value = _value(loader, value_node)
            try:
                zone(value)
            except ValueError as exc:  # a number, a date, null (`timezone:` left empty)
                raise PoolFileError(_line(value_node), str(exc)) from exc
            out["timezone"] = value
        elif key in ("active_hours", "actions_only_hours"):
            out[key] = _windows(loader, value_node)
        elif key == "daily_caps":
            if not isinstance(value_node, yaml.MappingNode):
                raise PoolFileError(_line(value_node), "expected {fast: N, relax: M}")
            for cap_key, cap_node in value_node.value:
                if cap_key.value not in ("fast", "relax"):
                    raise PoolFileError(_line(cap_key), "daily_caps has fast and relax only")
                out[f"{cap_key.value}_cap"] = _cap(loader, cap_node)
        elif key == "caps_count_children":
            value = _value(loader, value_node)
            if not isinstance(value, bool):
                raise PoolFileError(_line(value_node), "expected true or false")
            out[key] = value
        elif key == "tier":
            value = _value(loader, value_node)
            if value not in [str(tier) for tier in Tier]:
                raise PoolFileError(_line(value_node), "expected one of primary, backup")
            out[key] = Tier(value)
        else:
            out[key] = _seconds(loader, value_node)
    try:
        return keys_from(out)  # the whole profile checked; keys as the API's are (-0.0 is 0)
    except ValueError as exc:
        raise PoolFileError(_line(node), str(exc)) from exc


def dump_block(profile: Pacing) -> dict[str, Any]:
    """A profile written out in full: `parse_block` reads it back to the same profile."""
    return dump_keys(keys_of(profile))


def dump_keys(keys: PacingKeys) -> dict[str, Any]:
    """Some keys written out (the file's and the API's form): `parse_block` reads them back."""
    out: dict[str, Any] = {}
    for name, value in keys.items():
        if name in ("fast_cap", "relax_cap"):
            out.setdefault("daily_caps", {})[name.removesuffix("_cap")] = value
        elif name in ("active_hours", "actions_only_hours"):
            out[name] = list(value)  # type: ignore[call-overload]
        elif name == "tier":
            out[name] = str(value)
        else:
            out[name] = value
    return out
