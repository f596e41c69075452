"""An emulated HYA account at run time: plan, setting, fast time, slots, state and counters.

Counters are per slot kind (fast and turbo share the fast slots):
- `in_flight`: tasks occupying a slot (pending with a slot, or processing);
- `submitted`: non-terminal tasks sent to the account, queued or not;
- `peak_*`: the highest value each reached since the last reset. A gateway that respects the
  slots never makes `peak_submitted` exceed `slots`.
Tasks beyond the slots wait in `queues`, first in first out, still `pending`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from emulator.config import ConfigError, EmulatedAccountSpec
from emulator.errors import BadRequest
from emulator.facts import PLANS, Plan, Setting, SlotKind


class AccountState(StrEnum):
    OK = "ok"
    BANNED = "banned"
    CAPTCHA = "captcha"
    EXPIRED = "expired"


def _per_kind(value: int = 0) -> dict[SlotKind, int]:
    return {SlotKind.FAST: value, SlotKind.RELAX: value}


class Account:
    def __init__(self, spec: EmulatedAccountSpec) -> None:
        self.bot_id = spec.bot_id
        self.name = spec.display_name
        self.plan = spec.plan_name
        self.setting = Setting(spec.setting)
        self.fast_seconds = spec.initial_fast_seconds()
        fast, relax = spec.slots()
        self.slots = {SlotKind.FAST: fast, SlotKind.RELAX: relax}
        self.state = AccountState.OK
        self.block_until = 0.0
        self.reason = ""
        self.fast_seconds_used = 0.0
        self.completed = 0
        self.in_flight = _per_kind()
        self.peak_in_flight = _per_kind()
        self.submitted = _per_kind()
        self.peak_submitted = _per_kind()
        self.queues: dict[SlotKind, deque[str]] = {SlotKind.FAST: deque(), SlotKind.RELAX: deque()}

    # --- rules -------------------------------------------------------------------------------

    @property
    def can_relax(self) -> bool:
        return PLANS[self.plan].relax

    def current_state(self, now: float) -> AccountState:
        """The state, lifting a timed ban whose deadline has passed."""
        if self.state is AccountState.BANNED and 0 < self.block_until <= now:
            self.state, self.block_until, self.reason = AccountState.OK, 0.0, ""
        return self.state

    def has_fast_time(self, cost: float) -> bool:
        """Fast time left for a task of this cost, checked at create [L]; charged on completion."""
        return self.fast_seconds > 0 and self.fast_seconds >= cost

    def load(self, kind: SlotKind) -> float:
        return self.submitted[kind] / max(self.slots[kind], 1)

    # --- counting ----------------------------------------------------------------------------

    def submit(self, kind: SlotKind) -> None:
        self.submitted[kind] += 1
        self.peak_submitted[kind] = max(self.peak_submitted[kind], self.submitted[kind])

    def has_free_slot(self, kind: SlotKind) -> bool:
        return self.in_flight[kind] < self.slots[kind]

    def occupy(self, kind: SlotKind) -> None:
        self.in_flight[kind] += 1
        self.peak_in_flight[kind] = max(self.peak_in_flight[kind], self.in_flight[kind])

    def finish(self, kind: SlotKind, held_slot: bool) -> None:
        self.submitted[kind] -= 1
        if held_slot:
            self.in_flight[kind] -= 1

    def charge(self, seconds: float) -> bool:
        """Spend fast time; True when this spent the last of it (setting turns relax)."""
        if seconds <= 0:
            return False
        had_time = self.fast_seconds > 0
        spent = min(seconds, self.fast_seconds)
        self.fast_seconds -= spent
        self.fast_seconds_used += spent
        if had_time and self.fast_seconds <= 0:
            self.fast_seconds = 0.0
            self.setting = Setting.RELAX
            return True
        return False

    def forget_tasks(self, clear_peaks: bool) -> None:
        """After a reset: no task exists any more, so nothing is in flight or queued."""
        self.in_flight, self.submitted = _per_kind(), _per_kind()
        for queue in self.queues.values():
            queue.clear()
        if clear_peaks:
            self.peak_in_flight, self.peak_submitted = _per_kind(), _per_kind()
            self.completed = 0
            self.fast_seconds_used = 0.0

    # --- control -----------------------------------------------------------------------------

    def patch(self, changes: Mapping[str, Any]) -> None:
        """Change fields from `PATCH /_emulator/accounts/{bot_id}`; BadRequest names the field."""
        allowed = {"name", "plan", "setting", "fast_seconds", "fast_slots", "relax_slots"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise BadRequest(f"unknown account field(s): {', '.join(unknown)}")
        try:
            plan = Plan(changes.get("plan", self.plan))
            setting = Setting(changes.get("setting", self.setting))
        except ValueError as exc:
            raise BadRequest(f"plan or setting: {exc}") from None
        fast_seconds = changes.get("fast_seconds", self.fast_seconds)
        if isinstance(fast_seconds, bool) or not isinstance(fast_seconds, int | float):
            raise BadRequest("fast_seconds must be a number")
        if fast_seconds < 0:
            raise BadRequest("fast_seconds must not be negative")
        slots = dict(self.slots)
        for field, kind in (("fast_slots", SlotKind.FAST), ("relax_slots", SlotKind.RELAX)):
            value = changes.get(field, slots[kind])
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadRequest(f"{field} must be a non-negative integer")
            slots[kind] = value
        name = changes.get("name", self.name)
        if not isinstance(name, str):
            raise BadRequest("name must be a string")
        self.name, self.plan, self.setting = name, plan, setting
        self.fast_seconds, self.slots = float(fast_seconds), slots

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "bot_id": self.bot_id,
            "name": self.name,
            "plan": self.plan.value,
            "setting": self.setting.value,
            "fast_seconds": self.fast_seconds,
            "fast_seconds_used": self.fast_seconds_used,
            "state": self.current_state(now).value,
            "block_until": self.block_until,
            "reason": self.reason,
            "slots": _plain(self.slots),
            "in_flight": _plain(self.in_flight),
            "peak_in_flight": _plain(self.peak_in_flight),
            "submitted": _plain(self.submitted),
            "peak_submitted": _plain(self.peak_submitted),
            "queued": {kind.value: len(queue) for kind, queue in self.queues.items()},
            "completed": self.completed,
        }


def _plain(values: Mapping[SlotKind, int]) -> dict[str, int]:
    return {kind.value: count for kind, count in values.items()}


def build_accounts(specs: tuple[EmulatedAccountSpec, ...]) -> dict[int, Account]:
    accounts: dict[int, Account] = {}
    for spec in specs:
        if spec.bot_id in accounts:
            raise ConfigError(f"bot_id {spec.bot_id} appears twice")
        accounts[spec.bot_id] = Account(spec)
    return accounts
