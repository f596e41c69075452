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


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves. Both durations 0 is instant mode (see docs/emulator.md)."""

    api_key: str | None = None
    pending_seconds: float = 2.0
    processing_seconds: float = 4.0
    progress_steps: int = 3
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

    def with_speed(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with new `pending_seconds`, `processing_seconds` or `progress_steps`."""
        allowed = {"pending_seconds", "processing_seconds", "progress_steps"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        for name, value in changes.items():
            whole = name == "progress_steps"
            if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                raise ConfigError(f"{name} must be a {'whole ' if whole else ''}number")
        return replace(self, **changes)

    @property
    def is_instant(self) -> bool:
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
