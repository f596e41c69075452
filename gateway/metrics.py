"""mjgate's Prometheus metrics: one declared API against an injected registry.

Two kinds of series (docs/observability.md lists every one):

- **process series**: counters and histograms this replica moved (requests, tasks, upstream
  calls, store errors, webhooks, notifications, account events). Summed across replicas.
- **pool series**: gauges read from Redis at scrape time. The `/metrics` handler fetches one
  `PoolSnapshot` (`store.pool_snapshot`: at most two Redis round trips whatever the pool size)
  and hands it to `Metrics.set_pool`; `PoolCollector` turns the latest one into gauges. Every
  replica reports the same pool, so dashboards take `max`. `set_pool(None)` (Redis unreachable)
  makes the scrape report `mjgate_store_up 0` and no pool series, never an error.

Every label is bounded: values outside a label's known set are reported as `other`, and no label
ever holds a client key, task id, prompt or URL. Per-account series (`bot_id`) are on by default
and off with `per_account=False` (`MJGATE_METRICS_PER_ACCOUNT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from routing.model import AccountState, Plan, Setting, SlotKind, TaskType
from routing.quotas import QUOTA_LIMITS, QUOTA_THRESHOLDS
from routing.results import Decision, Outcome
from routing.snapshot import AccountFigures, PoolSnapshot

OTHER = "other"
NONE = "none"  # no mode (yet): a staged or a forwarded task
INHERIT = "inherit"  # the requested mode of a child task: its parent's

TASK_TYPES = frozenset(str(task_type) for task_type in TaskType)
MODES = frozenset({"relax", "fast", "turbo", INHERIT, NONE})
# the decisions with a label of their own; the others (`pinned*`) are reported as `other`
DECISIONS = frozenset(Decision) - {
    Decision.PINNED, Decision.PINNED_RELAX_SETTING, Decision.PINNED_RELAX_NO_FAST_TIME
}  # fmt: skip
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
    "renewed",
    "woken",
)
# Redis operations that count store errors (their label values exist from the first scrape)
STORE_OPS = frozenset(
    {
        "reserve_root", "reserve_child", "settle", "extend_lease", "claim_expired_leases",
        "dispatch_staged", "cancel_staged", "tick", "apply_account", "set_state",
        "set_fast_time", "remove_account", "record_save", "record_load", "record_lookup",
        "record_delete", "idempotency", "key_lookup", "rate_limit", "pool_snapshot",
        "schedule", "track_claim", "track_take", "durations", "outbox", "load_scripts",
    }
)  # fmt: skip
# one series per decision exists from the start: (task_type, requested mode, effective mode)
INITIAL_CREATES = {
    Decision.ROUTED: ("imagine", "fast", "fast"),
    Decision.STAGED: ("imagine", "fast", NONE),
    Decision.FALLBACK_RELAX: ("imagine", "fast", "relax"),
    Decision.INHERITED: ("upscale", INHERIT, "fast"),
    Decision.INHERITED_RELAX_SETTING: ("upscale", INHERIT, "relax"),
    Decision.INHERITED_RELAX_NO_FAST_TIME: ("upscale", INHERIT, "relax"),
    Decision.INHERITED_RELAX_REQUESTED: ("upscale", "relax", "relax"),
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


def _mode(value: str) -> str:
    return bounded(value or NONE, MODES)


def _upstream_status(value: str) -> str:
    if (len(value) == 3 and value.isdigit()) or value in UPSTREAM_STATUSES:
        return value
    return OTHER


class PoolCollector:
    """Gauges of the pool, from the latest snapshot handed to `Metrics.set_pool`.

    Before the first `set_pool` and after `set_pool(None)` it reports `mjgate_store_up 0` and no
    other series, so a scrape during a Redis outage answers, and alerts on the pool's figures
    neither fire nor resolve on stale data. Its cost is the snapshot's: `PoolStore.pool_snapshot`
    reads the pool in at most two round trips; building the families is O(accounts) only with
    per-account series on.
    """

    def __init__(self, *, per_account: bool) -> None:
        self.per_account = per_account
        self.snapshot: PoolSnapshot | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(None, describe=True)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.snapshot)

    def _families(self, pool: PoolSnapshot | None, *, describe: bool = False) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mjgate_store_up", "1 if this scrape read the pool from Redis, else 0"
        )
        if not describe:
            up.add_metric([], 0 if pool is None else 1)
        yield up
        yield from _pool_families(pool)
        if self.per_account:
            yield from _account_families(() if pool is None else pool.per_account)


def _pool_families(pool: PoolSnapshot | None) -> tuple[Metric, ...]:
    accounts = GaugeMetricFamily(
        "mjgate_accounts", "Accounts in the pool", labels=["plan", "state", "setting"]
    )
    fast_left = GaugeMetricFamily(
        "mjgate_pool_fast_seconds_remaining",
        "Fast GPU time left, not reserved, summed over every account, seconds",
    )
    slots = GaugeMetricFamily(
        "mjgate_pool_slots",
        "Slots of the active accounts: capacity and in use",
        labels=["mode", "kind"],
    )
    relax_capable = GaugeMetricFamily(
        "mjgate_pool_relax_capable_accounts",
        "Active accounts that can run relax work (not basic, with relax slots)",
    )
    staged = GaugeMetricFamily("mjgate_staged_tasks", "Tasks staged, waiting for a slot")
    eligible = GaugeMetricFamily(
        "mjgate_pool_accounts_eligible_now",
        "Active accounts pacing lets take new root work now (in hours, out of a gap, under a cap)",
    )
    if pool is not None:
        # Every (plan, state, setting) is reported, 0 included, so that a query such as
        # `mjgate_accounts{state="cooling"}` reads 0 rather than "no data".
        for plan in Plan:
            for state in AccountState:
                for setting in Setting:
                    count = pool.accounts.get((plan, state, setting), 0)
                    accounts.add_metric([plan.value, state.value, setting.value], count)
        fast_left.add_metric([], pool.fast_seconds_left)
        for mode in SlotKind:
            slots.add_metric([mode.value, "capacity"], pool.slot_capacity.get(mode, 0))
            slots.add_metric([mode.value, "in_use"], pool.slots_in_use.get(mode, 0))
        relax_capable.add_metric([], pool.relax_capable)
        staged.add_metric([], pool.staged)
        eligible.add_metric([], pool.eligible_now)
    return accounts, fast_left, slots, relax_capable, staged, eligible


def _account_families(rows: Iterable[AccountFigures]) -> tuple[Metric, ...]:
    fast_left = GaugeMetricFamily(
        "mjgate_account_fast_seconds_remaining",
        "Fast GPU time left per account, not reserved, seconds",
        labels=["bot_id"],
    )
    in_flight = GaugeMetricFamily(
        "mjgate_account_in_flight", "Tasks holding a slot per account", labels=["bot_id", "mode"]
    )
    states = GaugeMetricFamily(
        "mjgate_account_state",
        "1 for each account, labelled with its current state",
        labels=["bot_id", "state"],
    )
    jobs_today = GaugeMetricFamily(
        "mjgate_account_jobs_today",
        "Jobs submitted since local midnight by an account with pacing (what its caps count)",
        labels=["bot_id", "mode"],
    )
    for row in rows:
        bot_id = str(row.bot_id)
        if row.paced:
            jobs_today.add_metric([bot_id, SlotKind.FAST.value], row.fast_today)
            jobs_today.add_metric([bot_id, SlotKind.RELAX.value], row.relax_today)
        fast_left.add_metric([bot_id], row.fast_seconds_left)
        in_flight.add_metric([bot_id, SlotKind.FAST.value], row.fast_in_flight)
        in_flight.add_metric([bot_id, SlotKind.RELAX.value], row.relax_in_flight)
        if row.state is not None:
            states.add_metric([bot_id, row.state.value], 1)
    return fast_left, in_flight, states, jobs_today


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


class Metrics:
    """Every metric mjgate exports, declared once against one registry.

    `registry=None` makes a fresh `CollectorRegistry`, never the global one, so tests and
    several apps in one process never share series.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        per_account: bool = True,
        version: str | None = None,
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._upstream_children: dict[tuple[str, str], Any] = {}
        self.http_requests = Counter(
            "mjgate_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "mjgate_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.tasks_created = Counter(
            "mjgate_tasks_created",
            "Midjourney tasks accepted, by routing decision",
            ["task_type", "requested_mode", "effective_mode", "decision"],
            registry=r,
        )
        self.tasks_finished = Counter(
            "mjgate_tasks_finished",
            "Tasks that reached a terminal status",
            ["task_type", "mode", "status"],
            registry=r,
        )
        self.task_duration = Histogram(
            "mjgate_task_duration_seconds",
            "Time from create to a terminal status",
            ["task_type", "mode"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            "mjgate_upstream_requests",
            "Calls to the upstream (GoAPI), by answer",
            ["op", "status"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "mjgate_upstream_request_duration_seconds",
            "Time the upstream took to answer",
            ["op"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "mjgate_store_errors", "Redis calls that failed", ["op"], registry=r
        )
        self.webhook_deliveries = Counter(
            "mjgate_webhook_deliveries",
            "Client webhook delivery attempts, by outcome",
            ["outcome"],
            registry=r,
        )
        self.notifications = Counter(
            "mjgate_account_notifications",
            "GoAPI account notifications received, by type",
            ["type"],
            registry=r,
        )
        self.account_events = Counter(
            "mjgate_account_events",
            "Account changes mjgate made itself (not the operator's)",
            ["event"],
            registry=r,
        )
        self.tasks_staged = Counter(
            "mjgate_tasks_staged",
            "Tasks staged when created, by why they wait (paced:* are pacing's rules)",
            ["reason"],
            registry=r,
        )
        self.quota_thresholds = Counter(
            "mjgate_quota_thresholds",
            "Client keys crossing a soft threshold of a quota (80%, 95%), once per period",
            ["quota", "percent"],
            registry=r,
        )
        self.dead_slot = Histogram(
            "mjgate_task_dead_slot_seconds",
            "Slot time held after a task ended upstream: from its end (or the first moment "
            "mjgate could have known) to the settle, by where the news came from",
            ["source"],
            buckets=DEAD_BUCKETS,
            registry=r,
        )
        self.task_gets = Histogram(
            "mjgate_task_upstream_gets",
            "Upstream GETs spent on a task until it finished (completion checks, client "
            "refreshes, the reconciler)",
            buckets=GET_BUCKETS,
            registry=r,
        )
        self.tracker_lateness = Histogram(
            "mjgate_tracker_late_seconds",
            "How late the completion tracker checks a task, past its due time",
            buckets=LATE_BUCKETS,
            registry=r,
        )
        self._created = Children(self.tasks_created)
        self._dead_slot = Children(self.dead_slot)
        self._finished = Children(self.tasks_finished)
        self._task_duration = Children(self.task_duration)
        self._upstream_duration = Children(self.upstream_duration)
        self.build_info = Gauge(
            "mjgate_build_info", "Always 1; the running mjgate's version", ["version"], registry=r
        )
        self.build_info.labels(version or _installed_version()).set(1)
        # Small fixed label sets start at 0, so that `increase()` sees the first event.
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for type_ in NOTIFICATION_TYPES:
            self.notifications.labels(type_)
        for event in ACCOUNT_EVENTS:
            self.account_events.labels(event)
        for quota in QUOTA_LIMITS:
            for percent in QUOTA_THRESHOLDS:
                self.quota_thresholds.labels(quota, str(percent))
        for source in NEWS_SOURCES:
            self.dead_slot.labels(source)
        for op in STORE_OPS:
            self.store_errors.labels(op)
        self.tracker_tasks = Gauge(
            "mjgate_tracker_tasks",
            "Tasks sent upstream and not finished (tracked), and those whose completion check "
            "is due now (due): read from Redis at scrape time",
            ["state"],
            registry=r,
        )
        self._initial_series()
        self.pool = PoolCollector(per_account=per_account)
        r.register(self.pool)

    def _initial_series(self) -> None:
        """The series the dashboard and alerts query exist at 0 from the first scrape, so no
        panel says "No data" on a fresh process and `increase()` sees the first event."""
        for decision, (task_type, requested, effective) in INITIAL_CREATES.items():
            self._created(task_type, requested, effective, decision)
        for mode in ("fast", "relax", "turbo"):
            self._task_duration("imagine", mode)
            for status in TASK_STATUSES:
                self._finished("imagine", mode, status)
        for op in UPSTREAM_OPS:
            self._upstream_duration(op)
            self.upstream_requests.labels(op, "200")
        for route, method in INITIAL_ROUTES:
            self.observe_request(route, method, 200, None)
        for reason in STAGED_REASONS:
            self.tasks_staged.labels(reason)

    def observe_request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """`route` is the matched route's template (`/api/v1/task/{task_id}`) or `unmatched`.

        Called on every request: the labelled children are cached (labels are bounded, so
        the cache is too) to skip prometheus-client's per-call label lookup and lock."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route, bounded(method, HTTP_METHODS), str(status)),
                self.http_duration.labels(route),
            )
            self._request_children[key] = children
        if seconds is not None:  # None: create the series only
            children[0].inc()
            children[1].observe(seconds)

    def task_created(
        self, task_type: str, requested_mode: str, effective_mode: str, decision: Decision | None
    ) -> None:
        self._created(
            bounded(task_type, TASK_TYPES),
            _mode(requested_mode),
            _mode(effective_mode),
            bounded(decision or "", DECISIONS),
        ).inc()

    def task_finished(self, task_type: str, mode: str, status: str, seconds: float | None) -> None:
        """`status`: how the task ended (an `Outcome`), or its terminal record's status."""
        task_type, mode = bounded(task_type, TASK_TYPES), _mode(mode)
        self._finished(task_type, mode, bounded(status, TASK_STATUSES)).inc()
        if seconds is not None:
            self._task_duration(task_type, mode).observe(seconds)

    def upstream_request(self, op: str, status: str, seconds: float | None) -> None:
        """`status`: the HTTP status (`"200"`), `not_sent` or `timeout`."""
        key = (op, status)
        counter = self._upstream_children.get(key)
        if counter is None:
            counter = self.upstream_requests.labels(
                bounded(op, UPSTREAM_OPS), _upstream_status(status)
            )
            self._upstream_children[key] = counter
        counter.inc()
        if seconds is not None:
            self._upstream_duration(bounded(op, UPSTREAM_OPS)).observe(seconds)

    def task_tracked(self, source: str, dead_seconds: float, gets: int) -> None:
        """A sent task settled: the slot time it held after it ended, and its GETs."""
        self._dead_slot(bounded(source, NEWS_SOURCES)).observe(dead_seconds)
        self.task_gets.observe(gets)

    def set_tracking(self, tracked: int, due: int) -> None:
        self.tracker_tasks.labels("tracked").set(tracked)
        self.tracker_tasks.labels("due").set(due)

    def tracker_late(self, seconds: float) -> None:
        self.tracker_lateness.observe(seconds)

    def store_error(self, op: str) -> None:
        self.store_errors.labels(op).inc()  # ops are named in code, never by a client

    def webhook_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(bounded(outcome, WEBHOOK_OUTCOMES)).inc()

    def notification(self, type_: str) -> None:
        self.notifications.labels(bounded(type_, NOTIFICATION_TYPES)).inc()

    def task_staged(self, reason: str) -> None:
        self.tasks_staged.labels(bounded(reason, STAGED_REASONS)).inc()

    def quota_threshold(self, quota: str, percent: int) -> None:
        level = str(percent) if percent in QUOTA_THRESHOLDS else OTHER
        self.quota_thresholds.labels(bounded(quota, QUOTA_LIMITS), level).inc()

    def account_event(self, event: str) -> None:
        self.account_events.labels(bounded(event, ACCOUNT_EVENTS)).inc()

    def set_pool(self, snapshot: PoolSnapshot | None) -> None:
        """The pool as read for this scrape; None when Redis could not be read."""
        self.pool.snapshot = snapshot

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _installed_version() -> str:
    try:
        return metadata.version("mjgate")
    except metadata.PackageNotFoundError:
        return "unknown"
