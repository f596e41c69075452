"""How long a task holds its slot: fixed phases, one figure for every task, or GoAPI-like times
per task type and mode; exact, or spread around the median.

A task's time counts from the moment it takes a slot on its account to its end. It is drawn
once, when the task takes the slot, and split into its two phases: `pending` (Midjourney has the
job but has not started it) and `processing`. Three sources of the median, in this order:

- `task_seconds`: every task, whatever its type and mode (the scheduling benchmark's "each task
  takes T seconds"); split PENDING_SHARE / the rest;
- `realistic_durations`: MEDIAN_SECONDS below, per task type and mode [L]; split the same way;
- otherwise `pending_seconds` and `processing_seconds` as configured (2 s and 4 s by default).

Every duration is multiplied by `time_scale` (0.05 turns a 60 s task into 3 s), then by a
factor e^(spread·z) with z standard normal, bounded to ±BOUND_SIGMAS so that a draw can never be
absurd: the median stays the median, and spread 0 (the default except with realistic durations)
draws nothing at all, so fixed speeds behave exactly as they always did. The draws come from
one random generator seeded by `duration_seed`, in the order tasks take slots, so a seeded run
that makes the same requests in the same order gets the same durations.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.config import EmulatorConfig
from emulator.facts import Mode, TaskType, cost_key

PENDING_SHARE = 0.1  # a real fast imagine: 3 s pending, 24 s processing [L]
REALISTIC_SPREAD = 0.25  # the default spread with realistic durations: p10-p90 about 0.7x-1.4x
BOUND_SIGMAS = 3.0  # draws are bounded to median x e^(+-3 spread)

# Median seconds from taking a slot to the end, (relax, fast, turbo) [L]: Midjourney's fast grid
# takes under a minute (a real one took 27 s), turbo about half, relax waits in a shared queue;
# an upscale "1".."4" is a crop of the grid, describe and seed need little GPU.
MEDIAN_SECONDS: Mapping[str, tuple[float, float, float]] = {
    "imagine": (120.0, 45.0, 20.0),
    "reroll": (120.0, 45.0, 20.0),
    "variation": (120.0, 45.0, 20.0),
    "blend": (120.0, 45.0, 20.0),
    "pan": (120.0, 45.0, 20.0),
    "outpaint": (120.0, 45.0, 20.0),
    "inpaint": (120.0, 45.0, 20.0),
    "upscale": (5.0, 5.0, 5.0),
    "upscale:light": (90.0, 30.0, 15.0),
    "upscale:beta": (90.0, 30.0, 15.0),
    "upscale:subtle": (150.0, 60.0, 30.0),
    "upscale:creative": (150.0, 60.0, 30.0),
    "upscale:2x": (150.0, 60.0, 30.0),
    "upscale:4x": (300.0, 120.0, 60.0),
    "describe": (10.0, 8.0, 8.0),
    "seed": (3.0, 3.0, 3.0),
}
_COLUMN = {Mode.RELAX: 0, Mode.FAST: 1, Mode.TURBO: 2}


@dataclass(frozen=True, slots=True)
class Phases:
    pending: float
    processing: float

    @property
    def total(self) -> float:
        return self.pending + self.processing


def realistic_median(task_type: TaskType, mode: Mode, index: str | None = None) -> float:
    """MEDIAN_SECONDS for a task, before any time scale."""
    return MEDIAN_SECONDS[cost_key(task_type, index, MEDIAN_SECONDS)][_COLUMN[mode]]


class Durations:
    """Draws each task's phases for one configuration (rebuilt, and so re-seeded, with it)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.spread = spread_of(config)
        self._random = random.Random(config.duration_seed)

    def median(self, task_type: TaskType, mode: Mode, index: str | None = None) -> Phases:
        """The phases of a task before the spread: what every task gets when spread is 0."""
        config, scale = self.config, self.config.time_scale
        if config.task_seconds is None and not config.realistic_durations:
            return Phases(config.pending_seconds * scale, config.processing_seconds * scale)
        if config.task_seconds is not None:
            total = config.task_seconds * scale
        else:
            total = realistic_median(task_type, mode, index) * scale
        return Phases(total * PENDING_SHARE, total * (1 - PENDING_SHARE))

    def draw(self, task_type: TaskType, mode: Mode, index: str | None = None) -> Phases:
        median = self.median(task_type, mode, index)
        factor = self.factor()
        if factor == 1.0:
            return median
        return Phases(median.pending * factor, median.processing * factor)

    def factor(self) -> float:
        """e^(spread·z), z standard normal bounded to ±BOUND_SIGMAS; exactly 1 without spread."""
        if self.spread == 0:
            return 1.0
        z = max(-BOUND_SIGMAS, min(BOUND_SIGMAS, self._random.gauss(0.0, 1.0)))
        return math.exp(self.spread * z)

    def bounds(
        self, task_type: TaskType, mode: Mode, index: str | None = None
    ) -> tuple[float, float]:
        """The shortest and longest total a draw can give."""
        total = self.median(task_type, mode, index).total
        reach = math.exp(self.spread * BOUND_SIGMAS)
        return total / reach, total * reach


def spread_of(config: EmulatorConfig) -> float:
    """The configured spread, or its default: REALISTIC_SPREAD with realistic durations, else 0."""
    if config.duration_spread is not None:
        return config.duration_spread
    return REALISTIC_SPREAD if config.realistic_durations else 0.0
