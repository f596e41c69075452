"""Pacing on the command line: the options `mjgate accounts add|set` and `mjgate pool pacing
set` take (they become the admin API's `pacing` object), the listing's "available" column,
and the rows `accounts show` and `pool pacing` print."""

from __future__ import annotations

import argparse
import math
from typing import Any

from routing.pacing import MAX_DAILY_CAP, MAX_GAP_SECONDS, MAX_WINDOWS, parse_window

OPTIONS = ("timezone", "active_hours", "actions_only_hours", "fast_cap", "relax_cap",
           "caps_count_children", "min_gap_seconds", "gap_jitter_seconds", "tier")  # fmt: skip


def _windows(value: str) -> list[str]:
    """`W,W` (`''`: none); an empty item (`09:00-17:00,`) is refused, not dropped, and so is
    a malformed one, as the server would (routing.pacing.parse_window says why)."""
    if not value.strip():
        return []
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"an empty window in {value!r}")
    if len(items) > MAX_WINDOWS:
        raise argparse.ArgumentTypeError(f"at most {MAX_WINDOWS} windows in a list")
    for item in items:
        try:
            parse_window(item)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return items


NO_CAP = -1  # `--fast-cap none`: the cap removed (null in the API)


def _cap(value: str) -> int:
    if value.strip().lower() in ("none", "-", ""):
        return NO_CAP
    try:
        jobs = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of jobs (or none)") from exc
    if jobs < 0:  # -1 would read as `none` (NO_CAP): a typo must not lift a cap
        raise argparse.ArgumentTypeError(f"{value!r} is negative: a number of jobs, or none")
    if jobs > MAX_DAILY_CAP:
        raise argparse.ArgumentTypeError(f"{value!r} is more than {MAX_DAILY_CAP:,} jobs a day")
    return jobs


def finite(value: str) -> float:
    """A number option: `nan` and `inf` are refused as usage errors (JSON has no such
    numbers; the request could not even be written)."""
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from exc
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _gap(value: str) -> float:
    """Seconds of a gap or its jitter: finite, 0 or more, at most MAX_GAP_SECONDS."""
    seconds = finite(value)
    if not 0 <= seconds <= MAX_GAP_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of seconds from 0 to {MAX_GAP_SECONDS:g}"
        )
    return seconds


def _yes_no(value: str) -> bool:
    if value.lower() in ("yes", "true", "1"):
        return True
    if value.lower() in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r}: say yes or no")


def add_options(parser: argparse.ArgumentParser, *, account: bool = True) -> None:
    group = parser.add_argument_group("pacing (accounts that behave like people)")
    group.add_argument("--timezone", metavar="ZONE", help="IANA name, e.g. Europe/Berlin")
    group.add_argument(
        "--active-hours",
        type=_windows,
        metavar="W,W",
        help="local windows like 09:00-23:30 (may cross midnight); '' = always",
    )
    group.add_argument(
        "--actions-only-hours",
        type=_windows,
        metavar="W,W",
        help="windows taking child tasks of the account's own grids only",
    )
    group.add_argument("--fast-cap", type=_cap, metavar="N", help="fast+turbo jobs a day; none")
    group.add_argument("--relax-cap", type=_cap, metavar="N", help="relax jobs a day; none")
    group.add_argument("--caps-count-children", type=_yes_no, metavar="yes|no")
    group.add_argument(
        "--min-gap",
        dest="min_gap_seconds",
        type=_gap,
        metavar="S",
        help="seconds after a submission before the next root task",
    )
    group.add_argument(
        "--gap-jitter",
        dest="gap_jitter_seconds",
        type=_gap,
        metavar="S",
        help="plus a random part of this many seconds",
    )
    group.add_argument("--tier", choices=("primary", "backup"))
    if account:
        group.add_argument(
            "--no-pacing",
            action="store_true",
            help="unpaced: opt out of the pool's default pacing (left out: add inherits it)",
        )


def given_flags(args: argparse.Namespace) -> list[str]:
    """The pacing options given on the command line, as typed (`--timezone`, `--min-gap`)."""
    flags = {"min_gap_seconds": "--min-gap", "gap_jitter_seconds": "--gap-jitter"}
    return [flags.get(name, "--" + name.replace("_", "-")) for name in OPTIONS
            if getattr(args, name, None) is not None]  # fmt: skip


def body(args: argparse.Namespace) -> dict[str, Any]:
    """`{"pacing": ...}` for the options given (the keys given only; null with
    --no-pacing), or {} when none was."""
    if getattr(args, "no_pacing", False):
        return {"pacing": None}
    given = {name: getattr(args, name) for name in OPTIONS
             if getattr(args, name, None) is not None}  # fmt: skip
    if not given:
        return {}
    caps = {
        key: None if given[f"{key}_cap"] == NO_CAP else given.pop(f"{key}_cap")
        for key in ("fast", "relax")
        if f"{key}_cap" in given
    }
    for key in ("fast_cap", "relax_cap"):
        given.pop(key, None)
    if caps:
        given["daily_caps"] = caps
    return {"pacing": given}


def available(account: dict[str, Any]) -> str:
    """The listing's column: `yes` (or which class only, one being at its daily cap), or why
    not (a state, or the pacing rule and until when)."""
    info = account.get("available") or {}
    if info.get("now"):
        return str(info.get("only") or "yes")  # "relax only: fast cap reached until ..."
    return str(info.get("why_not") or "no")


def profile_rows(profile: dict[str, Any]) -> list[tuple[str, Any]]:
    """A profile's lines (the pool's default, as `pool pacing` prints it)."""
    caps = profile["daily_caps"]
    return [
        ("tier", profile["tier"]),
        ("time zone", profile["timezone"]),
        ("active hours", profile["active_hours"] or "always"),
        ("actions-only hours", profile["actions_only_hours"]),
        ("daily caps", f"fast {_or_none(caps['fast'])}, relax {_or_none(caps['relax'])}"
                       f" (children count: {'yes' if profile['caps_count_children'] else 'no'})"),
        ("gap", gap_text(profile)),
    ]  # fmt: skip


def gap_text(profile: dict[str, Any]) -> str:
    """`20 s + up to 40 s`, `20 s` without jitter, `none` without either."""
    gap, jitter = profile["min_gap_seconds"], profile["gap_jitter_seconds"]
    if not jitter:
        return f"{gap:g} s" if gap else "none"
    return f"{gap:g} s + up to {jitter:g} s"


def _or_none(cap: int | None) -> str:
    return "none" if cap is None else str(cap)


def source(account: dict[str, Any]) -> str:
    """Where an account's pacing comes from: its own keys, the pool's default, or neither."""
    src = account.get("pacing_source") or {}
    if src.get("opted_out"):
        return "none (opted out of the pool's default)"
    own, inherited = src.get("own") or {}, src.get("inherited") or []
    parts = [f"own: {', '.join(own)}"] if own else []
    if inherited:
        parts.append(f"from the pool's default: {', '.join(inherited)}")
    return "; ".join(parts) or ("built-in defaults" if account.get("pacing") else "none")


def rows(account: dict[str, Any]) -> list[tuple[str, Any]]:
    """`accounts show`'s pacing lines (none without a profile)."""
    profile, pace = account.get("pacing"), account.get("pace")
    if not profile or not pace:  # unpaced; say so when the account opted out of a default
        opted_out = (account.get("pacing_source") or {}).get("opted_out")
        return [*([("pacing from", source(account))] if opted_out else []),
                ("available", available(account))]  # fmt: skip
    caps, today = pace["caps"], pace["today"]
    gap = gap_text(profile)
    return [
        ("pacing from", source(account)),
        ("tier", profile["tier"]),
        ("time zone", profile["timezone"]),
        ("active hours", profile["active_hours"] or "always"),
        ("actions-only hours", profile["actions_only_hours"]),
        ("phase", phase(pace)),
        ("today", f"fast {today['fast']}/{caps['fast'] if caps['fast'] is not None else '-'}, "
                  f"relax {today['relax']}/{caps['relax'] if caps['relax'] is not None else '-'}"
                  f" (resets {pace['day_ends']})"),
        ("gap", gap + (f", until {pace['gap_until']}" if pace["gap_until"] else "")),
        ("available", available(account)),
        ("next ready", next_ready(account, pace)),
    ]  # fmt: skip


def phase(pace: dict[str, Any]) -> str:
    """The phase and when it changes: `always` without hours, `to be planned` when the plan's
    look-ahead is used up (the tick computes the next)."""
    if not pace["phase_until"]:
        return f"{pace['phase']} (always)" if pace["phase"] == "active" else pace["phase"]
    then = pace["next_phase"] or "to be planned"
    return f"{pace['phase']} until {pace['phase_until']} (then {then})"


def next_ready(account: dict[str, Any], pace: dict[str, Any]) -> str:
    """When the account takes new root work again: now, pacing's `ready_at`, or (not active)
    its state first: a paused account is not ready when its gap ends."""
    state = account.get("state", "active")
    if state != "active":
        until = account.get("state_until")
        if not until:
            return f"not while {state}"
        later = pace["ready_at"] if pace["held"] and (pace["ready_at"] or "") > until else None
        if later:  # pacing holds it past its state's end (both ISO 8601 in UTC: comparable)
            return f"{later} ({state} until {until}, then {pace['held']})"
        return f"when {state} ends ({until})"
    return str(pace["ready_at"] or ("now" if not pace["held"] else "not known yet"))
