"""Fast time each task costs, in GPU seconds (rough figures, operator-overridable).

The table is keyed by task type, or `type:index` for upscale and variation indexes that cost
differently. Turbo costs twice fast; relax costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from routing.errors import CostTableError
from routing.model import Mode, TaskType

DEFAULT_COSTS: dict[str, int] = {
    "imagine": 60,
    "reroll": 60,
    "variation": 60,
    "blend": 60,
    "pan": 60,
    "outpaint": 60,
    "inpaint": 60,
    "describe": 10,
    "seed": 0,
    "upscale": 0,  # "1".."4": a crop of the grid
    "upscale:light": 60,
    "upscale:beta": 60,
    "upscale:2x": 120,
    "upscale:subtle": 120,
    "upscale:creative": 120,
    "upscale:4x": 360,
}


def parse_overrides(text: str) -> dict[str, int]:
    """Parse `imagine=60,upscale:4x=300` into a mapping; raises CostTableError."""
    result: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name.split(":", 1)[0] not in TaskType.__members__.values():
            raise CostTableError(f"'{item}': expected <task_type>[:<index>]=<seconds>")
        try:
            seconds = int(value)
        except ValueError as exc:
            raise CostTableError(f"'{item}': cost must be whole seconds") from exc
        if seconds < 0:
            raise CostTableError(f"'{item}': cost must not be negative")
        result[name] = seconds
    return result


@dataclass(frozen=True)
class CostTable:
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, int]) -> CostTable:
        return cls({**DEFAULT_COSTS, **overrides})

    def fast_seconds(self, task_type: TaskType, index: str | None = None) -> int:
        """GPU seconds a task takes in fast mode."""
        if index is not None:
            specific = self.costs.get(f"{task_type.value}:{index}")
            if specific is not None:
                return specific
        return self.costs.get(task_type.value, 60)

    def cost(self, task_type: TaskType, mode: Mode, index: str | None = None) -> int:
        """Fast time reserved for a task run in `mode`: ×2 for turbo, 0 for relax."""
        if mode is Mode.RELAX:
            return 0
        base = self.fast_seconds(task_type, index)
        return base * 2 if mode is Mode.TURBO else base
