"""How long tasks take: what the completion tracker expects, learnt from finished tasks.

The first completion check of a sent task is at its **expected end**, learnt from the latest
finished tasks of the same type and mode (`SAMPLES` kept per pair in Redis by
`routing.schedule.CheckSchedule`; `check_plan` says how). A check that comes early costs a
whole tracking interval of dead slot time, one that comes late only its lateness.

Until `MIN_SAMPLES` tasks of a type and mode have finished, nothing is known about this
deployment's upstream: tasks are then probed from one tracking interval after sending, each
wait twice the last, up to the typical durations below (rough wall-clock figures for Midjourney,
not measurements; the upstream's documentation gives GPU time, about a minute for a fast grid),
then every interval. They are the seed; what the pool really does replaces them after three
tasks.

What is learnt of a finished task is a bracket of its duration, measured from the moment the
create was sent: a webhook gives the end to within a network hop (a bracket of width zero); a
check that found the task finished knows it ended after the upstream's `ended_at` (whole
seconds) and after the last check that saw it running, and before this check (`bracket`).
Whole seconds are too coarse to plan from alone (measured on a burst whose tasks share one
fractional second: midpoints came out 0.3 s short and a third of first checks missed; upper
bounds alone stayed 0.7 to 0.9 s late). `check_plan` therefore searches: each first check
splits the range the steady durations can lie in, and what it finds narrows it for the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

SAMPLES = 31  # durations kept per (task type, mode)
MIN_SAMPLES = 3  # finished tasks before the median is trusted
MARGIN_SECONDS = 0.05  # a check planned at the latest end comes this much after it ...
MARGIN_FRACTION = 0.01  # ... plus this share of it

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


SPREAD_QUANTILES = (0.5, 0.75, 0.9, 1.0)  # spread durations: checks at these of the upper bounds


@dataclass(frozen=True)
class CheckPlan:
    """When to check a task sent now, in seconds after sending: at each of `checks` (rising)
    while it runs, then every tracking interval."""

    checks: tuple[float, ...]

    @property
    def first(self) -> float:
        return self.checks[0]

    @property
    def last(self) -> float:
        return self.checks[-1]

    def next_check(self, elapsed: float, interval: float) -> float:
        """After a check found the task running `elapsed` seconds after it was sent: when to
        check next, in seconds after sending. The plan may be newer than the task (it was
        sent before anything was learnt, or before the latest finished tasks narrowed the
        range): its checks still ahead are kept."""
        return next((at for at in self.checks if at > elapsed), elapsed + interval)


def _late(seconds: float) -> float:
    """A check for a task expected to have ended by `seconds`: just after."""
    return seconds * (1 + MARGIN_FRACTION) + MARGIN_SECONDS


def check_plan(samples: Sequence[Bracket], task_type: str, mode: str, interval: float) -> CheckPlan:
    """The checks of a task, from what the finished ones taught.

    - Nothing learnt: probe one tracking interval after sending, then at twice the time since
      sending each time, up to the typical duration: short tasks are found soon, long ones
      cost a few GETs, not one every interval.
    - Steady durations (every bracket overlaps in [low, high]): first in the middle of that
      range, then at its end. The first check either finds the task finished (the range's
      upper half is ruled out) or running (the lower half is): each task halves what the next
      ones must cover, so a few dozen tasks pin a steady duration to milliseconds, and no
      task waits past `high` (plus a margin) for its check.
    - Spread durations: at the median of the upper bounds, then their upper quartile, their
      9th decile and the longest: a task longer than most is found near its end, not a whole
      interval after a check that came too soon.
    """
    if len(samples) < MIN_SAMPLES:
        typical = typical_seconds(task_type, mode)
        probes = [min(interval, typical)]
        while probes[-1] > 0 and probes[-1] * 2 < typical:
            probes.append(probes[-1] * 2)
        return CheckPlan((*probes, typical) if probes[-1] < typical else tuple(probes))
    low = max(lo for lo, _ in samples)
    high = min(hi for _, hi in samples)
    if low <= high:
        if high - low <= 2 * MARGIN_SECONDS:
            return CheckPlan((_late(high),))
        return CheckPlan(((low + high) / 2, _late(high)))
    highs = sorted(hi for _, hi in samples)
    checks = [_late(float(median(highs)))]
    for q in SPREAD_QUANTILES[1:]:
        at = _late(highs[min(len(highs) - 1, round(q * (len(highs) - 1)))])
        if at > checks[-1] + 2 * MARGIN_SECONDS:
            checks.append(at)
    return CheckPlan(tuple(checks))


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
