"""What an emulator run looks like: speed, auth, accounts and where notifications go.

`EmulatorConfig` is a frozen snapshot; the running emulator swaps it whole when
`PATCH /_emulator/config` changes the speed. Account specs come from code, from the demo pool
(`DEMO_ACCOUNTS`) or from a JSON file (a list of objects with the spec's field names).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from emulator.facts import PLANS, Plan, Setting


class ConfigError(ValueError):
    """An account spec or option is invalid; the message names the field."""


@dataclass(frozen=True)
class EmulatedAccountSpec:
    """One Host-Your-Account Midjourney account. None means "the plan's default"."""

    bot_id: int
    plan: str = "standard"
    setting: str = "fast"
    fast_seconds: float | None = None
    fast_slots: int | None = None
    relax_slots: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.bot_id, bool) or not isinstance(self.bot_id, int) or self.bot_id <= 0:
            raise ConfigError(f"bot_id must be a positive integer, not {self.bot_id!r}")
        if self.plan not in Plan.__members__.values():
            raise ConfigError(f"bot {self.bot_id}: plan must be one of {_names(Plan)}")
        if self.setting not in Setting.__members__.values():
            raise ConfigError(f"bot {self.bot_id}: setting must be one of {_names(Setting)}")
        if self.fast_seconds is not None and self.fast_seconds < 0:
            raise ConfigError(f"bot {self.bot_id}: fast_seconds must not be negative")
        for slots in ("fast_slots", "relax_slots"):
            value = getattr(self, slots)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigError(f"bot {self.bot_id}: {slots} must be a non-negative integer")

    @property
    def plan_name(self) -> Plan:
        return Plan(self.plan)

    @property
    def display_name(self) -> str:
        return self.name or f"bot-{self.bot_id}"

    def initial_fast_seconds(self) -> float:
        if self.fast_seconds is not None:
            return float(self.fast_seconds)
        return float(PLANS[self.plan_name].fast_seconds)

    def slots(self) -> tuple[int, int]:
        """(fast slots, relax slots), the plan's defaults unless given."""
        spec = PLANS[self.plan_name]
        fast = spec.fast_slots if self.fast_slots is None else self.fast_slots
        relax = spec.relax_slots if self.relax_slots is None else self.relax_slots
        return fast, relax

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatedAccountSpec:
        if not isinstance(data, Mapping):
            raise ConfigError("each account must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown account field(s): {', '.join(unknown)}")
        if "bot_id" not in data:
            raise ConfigError("each account needs a bot_id")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc


def _names(enum: type[Plan] | type[Setting]) -> str:
    return ", ".join(member.value for member in enum)


DEMO_ACCOUNTS: tuple[EmulatedAccountSpec, ...] = (
    EmulatedAccountSpec(bot_id=1001, plan="basic", name="demo-basic"),
    EmulatedAccountSpec(bot_id=1002, plan="standard", name="demo-standard"),
    EmulatedAccountSpec(bot_id=1003, plan="pro", name="demo-pro"),
    EmulatedAccountSpec(bot_id=1004, plan="mega", name="demo-mega"),
)
"""The demo pool: one account per plan, each with its plan's monthly fast time."""


def parse_accounts(data: Any) -> tuple[EmulatedAccountSpec, ...]:
    """Specs from decoded JSON: a list of objects, or `{"accounts": [...]}`."""
    if isinstance(data, Mapping) and "accounts" in data:
        data = data["accounts"]
    if not isinstance(data, list):
        raise ConfigError("accounts must be a JSON list of objects")
    specs = tuple(EmulatedAccountSpec.from_mapping(item) for item in data)
    seen: set[int] = set()
    for spec in specs:
        if spec.bot_id in seen:
            raise ConfigError(f"bot_id {spec.bot_id} appears twice")
        seen.add(spec.bot_id)
    return specs


def load_accounts(source: str) -> tuple[EmulatedAccountSpec, ...]:
    """`demo` for the demo pool, else the path of a JSON file."""
    if source == "demo":
        return DEMO_ACCOUNTS
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read accounts file {source}: {exc.strerror}") from exc
    try:
        return parse_accounts(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"accounts file {source} is not valid JSON: {exc.msg}") from exc


# Fields `PATCH /_emulator/config` may change, and the JSON types each accepts.
SPEED_FIELDS: dict[str, tuple[type, ...]] = {
    "pending_seconds": (int, float),
    "processing_seconds": (int, float),
    "progress_steps": (int,),
    "task_seconds": (int, float, type(None)),
    "realistic_durations": (bool,),
    "time_scale": (int, float),
    "duration_spread": (int, float, type(None)),
    "duration_seed": (int, type(None)),
}
MAX_SPREAD = 3.0


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves. How long tasks take is `emulator.durations`' business: the
    fixed phases below, or `task_seconds` for every task, or `realistic_durations` per type and
    mode; times `time_scale`, spread by `duration_spread`, drawn from `duration_seed`. Every
    phase 0 is instant mode (see docs/emulator.md)."""

    api_key: str | None = None
    pending_seconds: float = 2.0
    processing_seconds: float = 4.0
    progress_steps: int = 3
    task_seconds: float | None = None  # every task holds its slot this long (the median)
    realistic_durations: bool = False  # medians per task type and mode (durations.py)
    time_scale: float = 1.0  # multiplies every duration
    duration_spread: float | None = None  # lognormal sigma; None: 0, or 0.25 when realistic
    duration_seed: int | None = None  # None: a different run each time
    accounts: tuple[EmulatedAccountSpec, ...] = ()
    notifications_url: str | None = None
    notifications_secret: str = ""
    webhook_retry_delays: tuple[float, ...] = (0.1, 0.5, 2.0)
    webhook_timeout_seconds: float = 5.0
    max_tasks: int = 200_000
    max_received: int = 100_000
    cost_overrides: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.pending_seconds < 0 or self.processing_seconds < 0:
            raise ConfigError("pending_seconds and processing_seconds must not be negative")
        if self.progress_steps < 0:
            raise ConfigError("progress_steps must not be negative")
        if self.max_tasks < 1 or self.max_received < 0:
            raise ConfigError("max_tasks must be positive and max_received not negative")
        if self.task_seconds is not None and self.task_seconds < 0:
            raise ConfigError("task_seconds must not be negative")
        if self.task_seconds is not None and self.realistic_durations:
            raise ConfigError("task_seconds and realistic_durations exclude each other")
        if self.time_scale < 0:
            raise ConfigError("time_scale must not be negative")
        spread = self.duration_spread
        if spread is not None and not 0 <= spread <= MAX_SPREAD:
            raise ConfigError(f"duration_spread must be from 0 to {MAX_SPREAD:g}")

    def with_speed(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with new speed fields (SPEED_FIELDS); ConfigError names a wrong one."""
        unknown = sorted(set(changes) - set(SPEED_FIELDS))
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        for name, value in changes.items():
            kinds = SPEED_FIELDS[name]
            if isinstance(value, bool) is not (bool in kinds) or not isinstance(value, kinds):
                what = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
                raise ConfigError(f"{name} must be {what}")
        return replace(self, **changes)

    @property
    def is_instant(self) -> bool:
        """Every phase of every task is 0: creates answer with the task already finished."""
        if self.time_scale == 0 or self.task_seconds == 0:
            return True
        if self.task_seconds is not None or self.realistic_durations:
            return False
        return self.pending_seconds == 0 and self.processing_seconds == 0

    @classmethod
    def instant(
        cls,
        *,
        accounts: tuple[EmulatedAccountSpec, ...] = (),
        api_key: str | None = None,
        notifications_url: str | None = None,
        notifications_secret: str = "",
    ) -> EmulatorConfig:
        """Tasks complete as they are created: for benchmarks and fast tests."""
        return cls(
            api_key=api_key,
            pending_seconds=0.0,
            processing_seconds=0.0,
            accounts=accounts,
            notifications_url=notifications_url,
            notifications_secret=notifications_secret,
        )

    @classmethod
    def sandbox(
        cls,
        *,
        api_key: str | None = None,
        notifications_url: str | None = None,
        notifications_secret: str = "",
        pending_seconds: float = 2.0,
        processing_seconds: float = 4.0,
    ) -> EmulatorConfig:
        """The demo pool at a human pace: what `make run` without a GoAPI key talks to."""
        return cls(
            api_key=api_key,
            pending_seconds=pending_seconds,
            processing_seconds=processing_seconds,
            accounts=DEMO_ACCOUNTS,
            notifications_url=notifications_url,
            notifications_secret=notifications_secret,
        )
