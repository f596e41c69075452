"""The vocabulary of routing: modes, plans, settings, account states, strategies, task types.

Every name here is the one used in the API, the metrics, the logs and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """A Midjourney process mode. Turbo spends fast time twice as fast and uses fast slots."""

    RELAX = "relax"
    FAST = "fast"
    TURBO = "turbo"

    @property
    def slot(self) -> SlotKind:
        return SlotKind.RELAX if self is Mode.RELAX else SlotKind.FAST


class SlotKind(StrEnum):
    """Which of an account's concurrency pools a task occupies."""

    FAST = "fast"
    RELAX = "relax"


class Plan(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PRO = "pro"
    MEGA = "mega"


class Setting(StrEnum):
    """The Midjourney account's own mode setting (`/settings` in Discord)."""

    FAST = "fast"
    RELAX = "relax"


class AccountState(StrEnum):
    ACTIVE = "active"  # takes root and child tasks
    DRAINING = "draining"  # child tasks only: retiring without breaking upscales
    PAUSED = "paused"  # nothing (operator, captcha)
    COOLING = "cooling"  # nothing until a deadline, then active by itself
    DISABLED = "disabled"  # nothing (operator, expired subscription, permanent ban)


class Strategy(StrEnum):
    """How a root task picks among eligible accounts (docs/routing.md, 'Strategy scores')."""

    LEAST_BUSY = "least_busy"  # lowest in-flight/slots, ties by most fast time left
    MOST_FAST_LEFT = "most_fast_left"  # most fast time left first
    WEIGHTED = "weighted"  # lowest in-flight/weight: load proportional to weight


class TaskType(StrEnum):
    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"
    DESCRIBE = "describe"
    SEED = "seed"
    BLEND = "blend"
    INPAINT = "inpaint"
    OUTPAINT = "outpaint"
    PAN = "pan"

    @property
    def is_root(self) -> bool:
        return self in ROOT_TASK_TYPES


ROOT_TASK_TYPES = frozenset({TaskType.IMAGINE, TaskType.DESCRIBE, TaskType.BLEND})


@dataclass(frozen=True)
class PlanSpec:
    """Defaults of a Midjourney plan (GoAPI's Midjourney plans)."""

    fast_seconds_per_month: int
    relax: bool
    fast_slots: int
    relax_slots: int


PLANS: dict[Plan, PlanSpec] = {
    Plan.BASIC: PlanSpec(
        fast_seconds_per_month=int(3.3 * 3600), relax=False, fast_slots=3, relax_slots=0
    ),
    Plan.STANDARD: PlanSpec(
        fast_seconds_per_month=15 * 3600, relax=True, fast_slots=3, relax_slots=3
    ),
    Plan.PRO: PlanSpec(fast_seconds_per_month=30 * 3600, relax=True, fast_slots=12, relax_slots=3),
    Plan.MEGA: PlanSpec(fast_seconds_per_month=60 * 3600, relax=True, fast_slots=12, relax_slots=3),
}
