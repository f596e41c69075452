"""How long tasks take: what the completion tracker expects, learnt from finished tasks.

The first completion check of a sent task is at its **expected end**: the median duration of
the latest finished tasks of the same type and mode (`SAMPLES` kept per pair in Redis by
`routing.schedule.CheckSchedule`), plus a small margin. A check that comes early costs a whole
tracking interval of dead slot time, one that comes late only the margin, so the margin leans
late.

Until `MIN_SAMPLES` tasks of a type and mode have finished, nothing is known about this
deployment's upstream: tasks are then checked every tracking interval from the start, and the
typical durations below (rough wall-clock figures for Midjourney, not measurements; the
upstream's documentation gives GPU time, about a minute for a fast grid) only cap that first
check. They are the seed; what the pool really does replaces them after three tasks.

A duration is measured from the moment the create was sent to the end of the task, the end
being known to within a bracket: after the last check that saw the task running, and not
before the upstream's `ended_at` (whole seconds), nor after the news that it finished.
`observed_end` takes the middle of that bracket.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

SAMPLES = 31  # durations kept per (task type, mode)
MIN_SAMPLES = 3  # finished tasks before the median is trusted
MARGIN_SECONDS = 0.2  # the first check comes this much after the expected end ...
MARGIN_FRACTION = 0.05  # ... plus this share of it

# Typical wall-clock seconds per task type in fast mode (turbo about half, relax about three
# times as long): the seed, before anything is learnt.
TYPICAL_FAST_SECONDS: dict[str, float] = {
    "imagine": 50.0,
    "variation": 50.0,
    "reroll": 50.0,
    "blend": 50.0,
    "pan": 50.0,
    "outpaint": 50.0,
    "inpaint": 50.0,
    "describe": 10.0,
    "upscale": 10.0,
    "seed": 5.0,
}
MODE_FACTOR = {"fast": 1.0, "turbo": 0.5, "relax": 3.0}


def typical_seconds(task_type: str, mode: str) -> float:
    return TYPICAL_FAST_SECONDS.get(task_type, 50.0) * MODE_FACTOR.get(mode, 1.0)


def expected_seconds(samples: Sequence[float]) -> float | None:
    """The median of the learnt durations, or None while fewer than MIN_SAMPLES are known."""
    if len(samples) < MIN_SAMPLES:
        return None
    return float(median(samples))


def first_check_delay(
    samples: Sequence[float], task_type: str, mode: str, interval: float
) -> float:
    """Seconds after sending a task at which to check it first."""
    expected = expected_seconds(samples)
    if expected is None:
        return min(interval, typical_seconds(task_type, mode))
    return expected * (1 + MARGIN_FRACTION) + MARGIN_SECONDS


def observed_end(*, news_at: float, running_at: float, upstream_end: float | None) -> float:
    """The best estimate of when a task ended, from what mjgate saw: it finished by `news_at`
    (the webhook or check that brought the news), after `running_at` (the last time it was
    seen running, or when it was sent), and in the whole second starting at `upstream_end`
    (the upstream's `ended_at`), when known."""
    low, high = running_at, news_at
    if upstream_end is not None:
        low = max(low, min(upstream_end, high))
        high = min(high, max(upstream_end + 1.0, low))
    return (low + high) / 2
