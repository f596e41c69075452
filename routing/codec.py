"""Turning the scripts' replies into routing's dataclasses and exceptions.

Replies come as bytes or str depending on the client's `decode_responses`; both are accepted.
The account hash's short field names are documented in `routing/lua/accounts.lua`
(pacing's in `routing/lua/pacing.lua`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from routing.accounts import AccountStatus, PaceStatus
from routing.errors import (
    NoRelaxCapableAccountError,
    PacedUnavailableError,
    ParentAccountUnavailableError,
    PinnedAccountUnavailableError,
    PoolEmptyError,
    QuotaExceededError,
    RoutingError,
    StagedLimitError,
    StoreError,
)
from routing.model import AccountState, Mode, Plan, Setting
from routing.pacing import ACTIVE, Pacing, plan
from routing.results import (
    Decision,
    Dropped,
    LeaseClaim,
    Outcome,
    Reservation,
    Settlement,
    Staged,
)
from routing.storeops import StoreOp


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """An HGETALL reply with str keys and values."""
    return {text(key): text(value) for key, value in raw.items()}


def _seconds(ms: str | None) -> float | None:
    return int(ms) / 1000 if ms else None


def _pairs(flat: Any) -> tuple[tuple[str, int], ...]:
    """`{name, n, name, n, ...}` as pairs; absent (a reply without quota figures) is ()."""
    items = list(flat or ())
    return tuple((text(items[i]), int(items[i + 1])) for i in range(0, len(items) - 1, 2))


def reservation(reply: Sequence[Any]) -> Reservation:
    """`{'R', bot_id, mode, cost, decision, staged, task_id[, left, alerts]}`"""
    return Reservation(
        task_id=text(reply[6]),
        bot_id=int(reply[1]),
        mode=Mode(text(reply[2])),
        cost=int(reply[3]),
        decision=Decision(text(reply[4])),
        staged=bool(int(reply[5])),
        quota=_pairs(reply[7] if len(reply) > 7 else None),
        alerts=_pairs(reply[8] if len(reply) > 8 else None),
    )


def dispatched(reply: Sequence[Any]) -> Reservation | Dropped:
    """One item of dispatch_staged's reply: `{'R', ...}` or `{'D', task_id, bot_id, reason}`."""
    if text(reply[0]) == "D":
        return Dropped(task_id=text(reply[1]), bot_id=int(reply[2]), reason=text(reply[3]))
    return reservation(reply)


def settlement(task_id: str, reply: Sequence[Any] | None) -> Settlement | None:
    """settle.lua's reply (nil: no reservation)."""
    if reply is None:
        return None
    return Settlement(
        task_id=task_id,
        bot_id=int(reply[0]),
        mode=Mode(text(reply[1])),
        outcome=Outcome(text(reply[2])),
        refunded=int(reply[3]),
        dispatched=tuple(dispatched(item) for item in reply[4]),
    )


def lease_claim(reply: Sequence[Any]) -> LeaseClaim:
    """`{task_id, bot_id, mode, cost, decision, staged, sent, claim}` (claim_leases.lua)."""
    task, bot, mode, cost, decision, staged, sent, claim = reply
    task_id, bot_id, effective = text(task), int(bot), Mode(text(mode))
    resend = None
    if int(staged) and not int(sent):
        resend = Reservation(
            task_id=task_id,
            bot_id=bot_id,
            mode=effective,
            cost=int(cost),
            decision=Decision(text(decision)),
            staged=True,
            claim=text(claim),
        )
    return LeaseClaim(task_id=task_id, bot_id=bot_id, mode=effective, resend=resend)


def decision(
    op: StoreOp, task_id: str, reply: Sequence[Any], parent: int = 0
) -> Reservation | Staged:
    """A reserve script's reply: a reservation, a staged task, or the error it stands for."""
    tag = text(reply[0])
    if tag == "R":
        return reservation(reply)
    if tag == "S":
        return Staged(
            task_id=task_id,
            reason=text(reply[1]),
            quota=_pairs(reply[2] if len(reply) > 2 else None),
            alerts=_pairs(reply[3] if len(reply) > 3 else None),
        )
    raise error(op, reply, parent)


def error(op: StoreOp, reply: Sequence[Any], bot_id: int = 0) -> RoutingError:
    """`{'E', code, detail}` as the routing exception it stands for."""
    code = text(reply[1])
    if code == "pool_empty":
        return PoolEmptyError("the pool has no account")
    if code == "no_relax_capable_account":
        return NoRelaxCapableAccountError("relax work needs an active account not on basic")
    if code == "staged_limit":
        return StagedLimitError(int(reply[2]))
    if code == "parent_unavailable":
        return ParentAccountUnavailableError(bot_id, text(reply[2]))
    if code == "pinned_unavailable":
        return PinnedAccountUnavailableError(bot_id, text(reply[2]))
    if code == "quota_exceeded":
        return QuotaExceededError(text(reply[2]), int(reply[3]))
    if code == "paced":
        return PacedUnavailableError(text(reply[2]), int(reply[3]))
    return StoreError(op, f"unexpected script reply {code!r}")


def account_status(
    bot_id: int, raw: Mapping[str, str], now: float, history: Sequence[Any] = ()
) -> AccountStatus:
    """An account hash (see accounts.lua) and its history list as an AccountStatus at `now`
    (unix seconds: a gap is read against it)."""
    entries: list[dict[str, object]] = [json.loads(text(item)) for item in history]
    return AccountStatus(
        bot_id=bot_id,
        name=raw.get("n", ""),
        plan=Plan(raw["p"]),
        setting=Setting(raw["se"]),
        declared_setting=Setting(raw["ds"]),
        state=AccountState(raw["st"]),
        state_reason=raw.get("sr", ""),
        state_until=_seconds(raw.get("su")),
        fast_seconds_left=int(raw["fl"]),
        fast_seconds_reserved=int(raw["fr"]),
        fast_slots=int(raw["fs"]),
        relax_slots=int(raw["rs"]),
        fast_in_flight=int(raw["fi"]),
        relax_in_flight=int(raw["ri"]),
        weight=int(raw["w"]),
        tags=tuple(json.loads(raw.get("tg") or "[]")),
        renews_at=_seconds(raw.get("rn")),
        history=tuple(entries),
        declared_fast_seconds=int(raw["dfl"]),
        declared_state=AccountState(raw["dst"]),
        declared_renews_at=_seconds(raw.get("drn")),
        pacing=Pacing.from_fields(dict(raw)),
        pace=pace_status(raw, now),
    )


PHASES = {"a": "active", "o": "actions_only", "x": "off"}


def gap_end(raw: Mapping[str, str], now: float) -> str | None:
    """The end (ms) of the gap the account is in at `now` (unix seconds), None outside one:
    held (`gp`, until `gr`) or not met by routing yet (`gu`, a field left after it ends)."""
    until = raw.get("gr") if raw.get("gp") else raw.get("gu")
    return until if until and int(until) > now * 1000 else None


def advanced(raw: Mapping[str, str], now: float) -> dict[str, str]:
    """The pacing fields as they are at `now` (unix seconds): the changes due by then that the
    tick has not applied yet (a window's edge, local midnight; pacing.lua's pace_advance), so
    a view read between ticks never shows a window closed or a count left from yesterday."""
    out, ms = dict(raw), now * 1000
    moved = False
    while out.get("pu") and int(out["pu"]) <= ms:
        phase, until = out.pop("pn", None), out.pop("pw", None)
        out["ph"] = phase or "x"
        out.pop("pu")
        if phase and until:
            out["pu"] = until
        moved = True
    if moved and out.get("pu"):  # the phase after this one, as the tick will plan it
        profile = Pacing.from_fields(dict(raw))
        ahead = plan(profile, round(ms)) if profile is not None else None
        if ahead is not None and (ahead.phase, ahead.until) == (out["ph"], int(out["pu"])):
            out["pn"], out["pw"] = ahead.next_phase or "", str(ahead.next_until or "")
    while out.get("de") and int(out["de"]) <= ms:
        out.pop("nf", None)
        out.pop("nr", None)
        if "dn" in out:
            out["de"] = out.pop("dn")
        else:
            out.pop("de")
    return out


def _window_opens(raw: Mapping[str, str]) -> str | None:
    """When the account's next active window opens (ms), outside one: the plan's next phase,
    or (actions-only hours then off hours, say) the profile's phases after it."""
    if raw.get("pn") == ACTIVE or not raw.get("pu"):
        return raw.get("pu")
    profile = Pacing.from_fields(dict(raw))
    at = int(raw["pu"])
    for _ in range(4):  # phases alternate among three: active comes within a few
        if profile is None:
            return None
        step = plan(profile, at)
        if step.phase == ACTIVE:
            return str(at)
        if step.until is None:
            return None
        at = step.until
    return None


def _caps_hold(raw: Mapping[str, str], capped_fast: bool, capped_relax: bool) -> bool:
    """Do caps hold every root task the account could take: both reached, or one and the
    other class one it can't run (pacing.lua's caps_hold: a Basic plan at its fast cap)?"""
    if capped_fast and capped_relax:
        return True
    runs_fast = raw.get("se") == "fast" and int(raw.get("fl") or 0) + int(raw.get("fr") or 0) > 0
    runs_relax = raw.get("p") != "basic" and int(raw.get("rs") or 0) > 0
    return (capped_fast and not runs_relax) or (capped_relax and not runs_fast)


def pace_status(raw: Mapping[str, str], now: float) -> PaceStatus | None:
    """Where an account stands against its pacing profile (pacing.lua's fields) at `now`,
    None without one. `held` names the rule as a staged task's reason would."""
    if "tz" not in raw:
        return None
    raw = advanced(raw, now)
    gap = gap_end(raw, now)
    fast, relax = int(raw.get("nf") or 0), int(raw.get("nr") or 0)
    capped_fast = bool(raw.get("kf")) and fast >= int(raw["kf"])
    capped_relax = bool(raw.get("kr")) and relax >= int(raw["kr"])
    phase = raw.get("ph", "a")
    held = ""
    if phase == "o":
        held = "paced:actions_only"
    elif phase == "x":
        held = "paced:outside_hours"
    elif _caps_hold(raw, capped_fast, capped_relax):  # until midnight: outlasts a gap
        held = "paced:daily_cap"
    elif gap:
        held = "paced:gap"
    ready = {
        "paced:actions_only": _window_opens(raw),
        "paced:outside_hours": _window_opens(raw),
        "paced:daily_cap": raw.get("de"),
        "paced:gap": gap,
    }.get(held)
    return PaceStatus(
        phase=PHASES.get(phase, "off"),
        phase_until=_seconds(raw.get("pu")),
        next_phase=PHASES.get(raw.get("pn", "")),
        fast_today=fast,
        relax_today=relax,
        day_ends=_seconds(raw.get("de")),
        gap_until=_seconds(gap),
        held=held,
        ready_at=_seconds(ready),
    )
