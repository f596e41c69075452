"""`Metrics`: every metric mjgate exports, declared once against one registry, and the process
series' methods (counters and histograms this replica moved: requests, tasks, upstream calls,
store errors, webhooks, notifications, account events), summed across replicas."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

import gateway.metrics.labels as labels
from gateway.metrics.labels import Children, bounded
from gateway.metrics.pool import PoolCollector
from routing.quotas import QUOTA_LIMITS, QUOTA_THRESHOLDS
from routing.results import Decision
from routing.snapshot import PoolSnapshot
from routing.storeops import StoreOp


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
            buckets=labels.HTTP_BUCKETS,
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
            buckets=labels.TASK_BUCKETS,
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
            buckets=labels.UPSTREAM_BUCKETS,
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
            buckets=labels.DEAD_BUCKETS,
            registry=r,
        )
        self.task_gets = Histogram(
            "mjgate_task_upstream_gets",
            "Upstream GETs spent on a task until it finished (completion checks, client "
            "refreshes, the reconciler)",
            buckets=labels.GET_BUCKETS,
            registry=r,
        )
        self.tracker_lateness = Histogram(
            "mjgate_tracker_late_seconds",
            "How late the completion tracker checks a task, past its due time",
            buckets=labels.LATE_BUCKETS,
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
        for outcome in labels.WEBHOOK_OUTCOMES:
            self.webhook_deliveries.labels(outcome)
        for type_ in labels.NOTIFICATION_TYPES:
            self.notifications.labels(type_)
        for event in labels.ACCOUNT_EVENTS:
            self.account_events.labels(event)
        for quota in QUOTA_LIMITS:
            for percent in QUOTA_THRESHOLDS:
                self.quota_thresholds.labels(quota, str(percent))
        for source in labels.NEWS_SOURCES:
            self.dead_slot.labels(source)
        for op in labels.STORE_OPS:
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
        for decision, (task_type, requested, effective) in labels.INITIAL_CREATES.items():
            self._created(task_type, requested, effective, decision)
        for mode in ("fast", "relax", "turbo"):
            self._task_duration("imagine", mode)
            for status in labels.TASK_STATUSES:
                self._finished("imagine", mode, status)
        for op in labels.UPSTREAM_OPS:
            self._upstream_duration(op)
            self.upstream_requests.labels(op, "200")
        for route, method in labels.INITIAL_ROUTES:
            self.observe_request(route, method, 200, None)
        for reason in labels.STAGED_REASONS:
            self.tasks_staged.labels(reason)

    def observe_request(self, route: str, method: str, status: int, seconds: float | None) -> None:
        """`route` is the matched route's template (`/api/v1/task/{task_id}`) or `unmatched`.

        Called on every request: the labelled children are cached (labels are bounded, so
        the cache is too) to skip prometheus-client's per-call label lookup and lock."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(route, bounded(method, labels.HTTP_METHODS), str(status)),
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
            bounded(task_type, labels.TASK_TYPES),
            labels.mode_label(requested_mode),
            labels.mode_label(effective_mode),
            bounded(decision or "", labels.DECISIONS),
        ).inc()

    def task_finished(self, task_type: str, mode: str, status: str, seconds: float | None) -> None:
        """`status`: how the task ended (an `Outcome`), or its terminal record's status."""
        task_type, mode = bounded(task_type, labels.TASK_TYPES), labels.mode_label(mode)
        self._finished(task_type, mode, bounded(status, labels.TASK_STATUSES)).inc()
        if seconds is not None:
            self._task_duration(task_type, mode).observe(seconds)

    def upstream_request(self, op: str, status: str, seconds: float | None) -> None:
        """`status`: the HTTP status (`"200"`), `not_sent` or `timeout`."""
        key = (op, status)
        counter = self._upstream_children.get(key)
        if counter is None:
            counter = self.upstream_requests.labels(
                bounded(op, labels.UPSTREAM_OPS), labels.upstream_status_label(status)
            )
            self._upstream_children[key] = counter
        counter.inc()
        if seconds is not None:
            self._upstream_duration(bounded(op, labels.UPSTREAM_OPS)).observe(seconds)

    def task_tracked(self, source: str, dead_seconds: float, gets: int) -> None:
        """A sent task settled: the slot time it held after it ended, and its GETs."""
        self._dead_slot(bounded(source, labels.NEWS_SOURCES)).observe(dead_seconds)
        self.task_gets.observe(gets)

    def set_tracking(self, tracked: int, due: int) -> None:
        self.tracker_tasks.labels("tracked").set(tracked)
        self.tracker_tasks.labels("due").set(due)

    def tracker_late(self, seconds: float) -> None:
        self.tracker_lateness.observe(seconds)

    def store_error(self, op: StoreOp) -> None:
        self.store_errors.labels(op).inc()  # ops are named in code, never by a client

    def webhook_delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(bounded(outcome, labels.WEBHOOK_OUTCOMES)).inc()

    def notification(self, type_: str) -> None:
        self.notifications.labels(bounded(type_, labels.NOTIFICATION_TYPES)).inc()

    def task_staged(self, reason: str) -> None:
        self.tasks_staged.labels(bounded(reason, labels.STAGED_REASONS)).inc()

    def quota_threshold(self, quota: str, percent: int) -> None:
        level = str(percent) if percent in QUOTA_THRESHOLDS else labels.OTHER
        self.quota_thresholds.labels(bounded(quota, QUOTA_LIMITS), level).inc()

    def account_event(self, event: str) -> None:
        self.account_events.labels(bounded(event, labels.ACCOUNT_EVENTS)).inc()

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
