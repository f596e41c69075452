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

What is learnt of a finished task is a bracket of its duration, measured from the moment the
create was sent: a webhook gives the end to within a network hop (a bracket of width zero); a
check that found the task finished knows it ended after the upstream's `ended_at` (whole
seconds) and after the last check that saw it running, and before this check (`bracket`).
When every learnt bracket overlaps, the durations are steady and the earliest upper bound is
the expectation: at or just after the end, never early. When they don't (durations spread),
the median of the upper bounds is. (Measured on a burst whose tasks share one fractional
second: midpoints came out 0.3 s short and a third of the first checks missed; upper bounds
alone ratchet up to a second late, since a check that comes late learns its own lateness.)
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

SAMPLES = 31  # durations kept per (task type, mode)
MIN_SAMPLES = 3  # finished tasks before the median is trusted
MARGIN_SECONDS = 0.1  # the first check comes this much after the expected end ...
MARGIN_FRACTION = 0.02  # ... plus this share of it

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


Bracket = tuple[float, float]  # (at least, at most) seconds


def expected_seconds(samples: Sequence[Bracket]) -> float | None:
    """What the learnt brackets say of the next task's duration; None while fewer than
    MIN_SAMPLES are known."""
    if len(samples) < MIN_SAMPLES:
        return None
    lowest = max(low for low, _ in samples)
    highest = min(high for _, high in samples)
    if lowest <= highest:  # steady durations: every bracket holds them
        return highest
    return float(median(high for _, high in samples))


def first_check_delay(
    samples: Sequence[Bracket], task_type: str, mode: str, interval: float
) -> float:
    """Seconds after sending a task at which to check it first."""
    expected = expected_seconds(samples)
    if expected is None:
        return min(interval, typical_seconds(task_type, mode))
    return expected * (1 + MARGIN_FRACTION) + MARGIN_SECONDS


def bracket(
    *, sent_at: float, news_at: float, running_at: float, upstream_end: float | None
) -> Bracket:
    """How long a task took, as (at least, at most) seconds from `sent_at`: it ended after it
    was last seen running and after the upstream's `ended_at` (whole seconds), and before the
    news that it had, and before the end of that second."""
    low, high = running_at, news_at
    if upstream_end is not None:
        low = max(low, min(upstream_end, high))
        high = min(high, max(upstream_end + 1.0, low))
    return max(0.0, low - sent_at), max(0.0, high - sent_at)
