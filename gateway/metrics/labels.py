"""The metrics' label values: every label's bounded set (a value outside it is reported as
`other`, so no input can grow the number of series), the series that exist from the first
scrape, the histograms' buckets, and `Children`: a labelled metric's children by their
label values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routing.model import Mode, TaskType
from routing.results import Decision, Outcome
from routing.storeops import StoreOp

OTHER = "other"
NONE = "none"  # no mode (yet): a staged or a forwarded task
INHERIT = "inherit"  # the requested mode of a child task: its parent's

TASK_TYPES = frozenset(str(task_type) for task_type in TaskType)
MODES = frozenset({*Mode, INHERIT, NONE})
# every decision this version knows has a label of its own; `other` is left for a value it
# does not know (a newer replica's, read back during a rolling upgrade)
DECISIONS = frozenset(str(decision) for decision in Decision)
# why a task was staged (routing.results.Staged.reason); `paced:*` are pacing's rules
STAGED_REASONS = (
    "fast_slots_busy", "relax_slots_busy", "parent_busy", "parent_paused", "pinned_busy",
    "pinned_paused", "key_in_flight_limit", "paced:outside_hours", "paced:actions_only",
    "paced:daily_cap", "paced:gap", OTHER,
)  # fmt: skip
TASK_STATUSES = frozenset(Outcome)  # how a finished task ended
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UPSTREAM_OPS = frozenset({"create", "get", "cancel", "forward"})
UPSTREAM_STATUSES = frozenset({"not_sent", "timeout"})  # besides 3-digit HTTP statuses
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed", "refused")
NOTIFICATION_TYPES = (
    "mj_bot_banned",
    "mj_bot_no_fasthour",
    "mj_bot_captcha_required",
    "mj_bot_subscription_expired",
    "no_active_mj_bot",
    "mj_penalty_triggered",
    OTHER,
)
ACCOUNT_EVENTS = (
    "cooled",
    "paused",
    "disabled",
    "unknown_to_upstream",
    "fast_time_exhausted",
    "ran_relax",
    "renewed",
    "woken",
)
# Redis operations that count store errors (their label values exist from the first scrape)
STORE_OPS = frozenset(str(op) for op in StoreOp)
# one series per decision a created task can have exists from the start (`forwarded` requests
# are not counted as created): (task_type, requested mode, effective mode)
INITIAL_CREATES = {
    Decision.ROUTED: ("imagine", "fast", "fast"),
    Decision.STAGED: ("imagine", "fast", NONE),
    Decision.FALLBACK_RELAX: ("imagine", "fast", "relax"),
    Decision.BACKUP_NO_FAST_HOURS: ("imagine", "fast", "fast"),
    Decision.BACKUP_NO_ACTIVE_PRIMARY: ("imagine", "fast", "fast"),
    Decision.BACKUP_NO_RELAX_PRIMARY: ("imagine", "relax", "relax"),
    Decision.INHERITED: ("upscale", INHERIT, "fast"),
    Decision.INHERITED_RELAX_SETTING: ("upscale", INHERIT, "relax"),
    Decision.INHERITED_RELAX_NO_FAST_TIME: ("upscale", INHERIT, "relax"),
    Decision.INHERITED_RELAX_REQUESTED: ("upscale", "relax", "relax"),
    Decision.PINNED: ("imagine", "fast", "fast"),
    Decision.PINNED_RELAX_SETTING: ("imagine", "fast", "relax"),
    Decision.PINNED_RELAX_NO_FAST_TIME: ("imagine", "fast", "relax"),
}
INITIAL_ROUTES = (
    ("/api/v1/task", "POST"),
    ("/api/v1/task/{task_id}", "GET"),
    ("/api/v1/task/{task_id}", "DELETE"),
)
# where the news that a task finished came from
NEWS_SOURCES = ("webhook", "client_poll", "tracker", "reconciler", "create")

# Gateway answers are mostly sub-millisecond; an upstream call takes tens of milliseconds to
# seconds; a Midjourney task takes seconds (fast) to many minutes (relax).
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TASK_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200, 1800)
# slot time held after a task ended: webhooks make it milliseconds, polling about a second
DEAD_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120)
GET_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55)
LATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


def bounded(value: str, allowed: Iterable[str]) -> str:
    """`value` if it is one of `allowed`, else `other`: a label never grows with its input."""
    return value if value in allowed else OTHER


def mode_label(value: str) -> str:
    """A mode as a label: relax, fast, turbo, `inherit`, `none`, else `other`."""
    return bounded(value or NONE, MODES)


def upstream_status_label(value: str) -> str:
    """An upstream answer as a label: its 3-digit HTTP status, `not_sent`, `timeout`, else
    `other`."""
    if (len(value) == 3 and value.isdigit()) or value in UPSTREAM_STATUSES:
        return value
    return OTHER


class Children:
    """A labelled metric's children, cached by their label values.

    prometheus-client's `labels()` validates, locks and looks up on every call (2-3 µs); the
    request path updates half a dozen series per request. Callers pass label values already
    folded to bounded sets (`bounded`), so the cache is bounded too."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = self.metric.labels(*labels)
        return child
