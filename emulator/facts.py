"""GoAPI's and Midjourney's facts as the emulator knows them: task types, modes, plans, costs.

Written from GoAPI's and Midjourney's public documentation, not from mjgate's routing code: the
emulator is the witness that mjgate follows GoAPI's rules, so it must not borrow mjgate's own
copy of them. One test (tests/test_facts_agree.py) compares these tables with mjgate's; a
difference there is a finding about one of the two, never something to paper over here.

- Task types: the ten Midjourney task types of `POST /api/v1/task`; imagine, describe and blend
  start from nothing, the others act on a parent task (`origin_task_id`).
- Modes: relax, fast, turbo. Fast and turbo run in an account's fast slots, relax in its relax
  slots. Turbo spends fast time twice as fast; relax spends none.
- Plans (monthly fast GPU time, relax or not, concurrent fast / relax jobs): basic 3.3 h, no
  relax, 3 / 0; standard 15 h, 3 / 3; pro 30 h, 12 / 3; mega 60 h, 12 / 3.
- Costs in fast GPU seconds [L]: a grid (imagine, reroll, variation, blend, pan, outpaint,
  inpaint) about a minute; upscale "1".."4" nothing (a crop of the grid), light and beta a
  minute, subtle, creative and 2x two minutes, 4x six; describe ten seconds; seed nothing.
  Only completed jobs are charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


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
        """Whether it needs no parent task (it takes a `process_mode` of its own)."""
        return self in (TaskType.IMAGINE, TaskType.DESCRIBE, TaskType.BLEND)


class SlotKind(StrEnum):
    """An account's two pools of concurrent jobs."""

    FAST = "fast"
    RELAX = "relax"


class Mode(StrEnum):
    RELAX = "relax"
    FAST = "fast"
    TURBO = "turbo"

    @property
    def slot(self) -> SlotKind:
        """Fast and turbo share the fast slots; relax has its own."""
        return SlotKind.RELAX if self is Mode.RELAX else SlotKind.FAST


class Plan(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PRO = "pro"
    MEGA = "mega"


class Setting(StrEnum):
    """The account's own Midjourney mode setting: relax runs everything relax."""

    FAST = "fast"
    RELAX = "relax"


@dataclass(frozen=True, slots=True)
class PlanFacts:
    fast_hours: float  # fast GPU time per month (renewed on the subscription date)
    relax: bool  # unlimited relax, or none at all (basic)
    fast_slots: int  # concurrent fast or turbo jobs
    relax_slots: int  # concurrent relax jobs

    @property
    def fast_seconds(self) -> int:
        return round(self.fast_hours * 3600)


PLANS: Mapping[Plan, PlanFacts] = {
    Plan.BASIC: PlanFacts(fast_hours=3.3, relax=False, fast_slots=3, relax_slots=0),
    Plan.STANDARD: PlanFacts(fast_hours=15, relax=True, fast_slots=3, relax_slots=3),
    Plan.PRO: PlanFacts(fast_hours=30, relax=True, fast_slots=12, relax_slots=3),
    Plan.MEGA: PlanFacts(fast_hours=60, relax=True, fast_slots=12, relax_slots=3),
}

TURBO_FACTOR = 2  # turbo spends fast time twice as fast as fast
GRID_SECONDS = 60  # one imagine grid: about one GPU-minute in fast mode

# Fast GPU seconds per task type; `type:index` where an upscale index differs [L].
FAST_SECONDS: Mapping[str, int] = {
    "imagine": GRID_SECONDS,
    "reroll": GRID_SECONDS,
    "variation": GRID_SECONDS,
    "blend": GRID_SECONDS,
    "pan": GRID_SECONDS,
    "outpaint": GRID_SECONDS,
    "inpaint": GRID_SECONDS,
    "describe": 10,
    "seed": 0,
    "upscale": 0,  # "1".."4": a crop of the grid, no GPU time
    "upscale:light": GRID_SECONDS,
    "upscale:beta": GRID_SECONDS,
    "upscale:subtle": 2 * GRID_SECONDS,
    "upscale:creative": 2 * GRID_SECONDS,
    "upscale:2x": 2 * GRID_SECONDS,
    "upscale:4x": 6 * GRID_SECONDS,
}


def cost_key(task_type: TaskType, index: str | None, table: Mapping[str, object]) -> str:
    """The key of a task in a table keyed like FAST_SECONDS: `upscale:4x` where the index has
    a row of its own, else the task type."""
    if index is not None and f"{task_type.value}:{index}" in table:
        return f"{task_type.value}:{index}"
    return task_type.value


class Costs:
    """Fast time charged on completion: FAST_SECONDS with the operator's overrides
    (`{"imagine": 50, "upscale:4x": 300}`, the same keys)."""

    def __init__(self, overrides: Mapping[str, int] | None = None) -> None:
        self.table: Mapping[str, int] = {**FAST_SECONDS, **(overrides or {})}

    def fast_seconds(self, task_type: TaskType, index: str | None = None) -> int:
        """GPU seconds of the task in fast mode."""
        return self.table.get(cost_key(task_type, index, self.table), GRID_SECONDS)

    def charge(self, task_type: TaskType, mode: Mode, index: str | None = None) -> int:
        """Fast seconds a completed task run in `mode` spends: turbo x2, relax nothing."""
        if mode is Mode.RELAX:
            return 0
        seconds = self.fast_seconds(task_type, index)
        return seconds * TURBO_FACTOR if mode is Mode.TURBO else seconds
