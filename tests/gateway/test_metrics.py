"""gateway.metrics against a fresh registry: each method moves its series, the pool collector
reads the latest snapshot (or reports the store down), labels stay bounded, and the exposition
is clean for both Python's parser and promtool."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from routing.model import AccountState, Plan, Setting, SlotKind
from routing.results import Decision
from routing.snapshot import AccountFigures, PoolSnapshot
from tests.test_deploy import promtool


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, version="1.2.3")


def snapshot(**changes: object) -> PoolSnapshot:
    values: dict[str, object] = {
        "accounts": {
            (Plan.PRO, AccountState.ACTIVE, Setting.FAST): 2,
            (Plan.BASIC, AccountState.COOLING, Setting.FAST): 1,
        },
        "fast_seconds_left": 7200,
        "fast_seconds_usable": 3600,  # the cooling account's is not
        "slot_capacity": {SlotKind.FAST: 24, SlotKind.RELAX: 6},
        "slots_in_use": {SlotKind.FAST: 5, SlotKind.RELAX: 1},
        "relax_capable": 2,
        "staged": 4,
        "per_account": (
            AccountFigures(1201, 3600, 3, 1),
            AccountFigures(1202, 3600, 2, 0),
            AccountFigures(1203, 0, 0, 0),
        ),
    }
    values.update(changes)
    return PoolSnapshot(**values)  # type: ignore[arg-type]


POOL_FAMILIES = {
    "mjgate_accounts",
    "mjgate_pool_fast_seconds_remaining",
    "mjgate_pool_fast_seconds_usable",
    "mjgate_pool_slots",
    "mjgate_pool_relax_capable_accounts",
    "mjgate_staged_tasks",
    "mjgate_account_fast_seconds_remaining",
    "mjgate_account_in_flight",
    "mjgate_account_state",
    "mjgate_pool_accounts_eligible_now",
    "mjgate_account_jobs_today",
}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def sample_count(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


# -- process series ---------------------------------------------------------------------------


def test_a_fresh_registry_by_default_never_the_global_one() -> None:
    first, second = Metrics(), Metrics()  # would collide on a shared registry
    assert first.registry is not REGISTRY and first.registry is not second.registry


def test_observe_request(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_request("/api/v1/task/{task_id}", "GET", 200, 0.003)
    metrics.observe_request("/api/v1/task/{task_id}", "GET", 200, 0.5)
    labels = {"route": "/api/v1/task/{task_id}", "method": "GET", "status": "200"}
    assert value(registry, "mjgate_http_requests_total", **labels) == 2
    route = {"route": "/api/v1/task/{task_id}"}
    assert value(registry, "mjgate_http_request_duration_seconds_count", **route) == 2
    assert value(registry, "mjgate_http_request_duration_seconds_sum", **route) == 0.503
    bucket = {**route, "le": "0.005"}
    assert value(registry, "mjgate_http_request_duration_seconds_bucket", **bucket) == 1


def test_task_created(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.task_created("imagine", "fast", "relax", "fallback_relax:no_fast_hours")
    metrics.task_created("upscale", "inherit", "relax", "inherited_relax:setting_relax")
    assert (
        value(
            registry,
            "mjgate_tasks_created_total",
            task_type="imagine",
            requested_mode="fast",
            effective_mode="relax",
            decision="fallback_relax:no_fast_hours",
        )
        == 1
    )
    assert (
        value(
            registry,
            "mjgate_tasks_created_total",
            task_type="upscale",
            requested_mode="inherit",
            effective_mode="relax",
            decision="inherited_relax:setting_relax",
        )
        == 1
    )


@pytest.mark.parametrize("decision", list(Decision))
def test_every_known_decision_has_its_own_label(
    metrics: Metrics, registry: CollectorRegistry, decision: Decision
) -> None:
    metrics.task_created("imagine", "fast", "relax", decision)
    labels = {"task_type": "imagine", "requested_mode": "fast", "effective_mode": "relax"}
    assert value(registry, "mjgate_tasks_created_total", **labels, decision=str(decision)) == 1
    assert not value(registry, "mjgate_tasks_created_total", **labels, decision="other")


def test_a_decision_this_version_does_not_know_is_other(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    newer = Decision("pinned_relax:something_new")  # read back from a newer replica's record
    assert newer not in set(Decision)
    metrics.task_created("imagine", "fast", "relax", newer)
    labels = {"task_type": "imagine", "requested_mode": "fast", "effective_mode": "relax"}
    assert value(registry, "mjgate_tasks_created_total", **labels, decision="other") == 1


def test_every_decision_of_a_created_task_starts_at_zero(registry: CollectorRegistry) -> None:
    Metrics(registry)
    started = {
        sample.labels["decision"]
        for family in registry.collect()
        if family.name == "mjgate_tasks_created"
        for sample in family.samples
        if sample.name == "mjgate_tasks_created_total"
    }
    assert started == {str(decision) for decision in Decision} - {Decision.FORWARDED}


def test_unknown_label_values_fold_into_other(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.task_created("video", "", "", "inherited_relax:something_new")
    assert (
        value(
            registry,
            "mjgate_tasks_created_total",
            task_type="other",
            requested_mode="none",
            effective_mode="none",
            decision="other",
        )
        == 1
    )
    metrics.observe_request("unmatched", "BREW", 404, 0.001)
    labels = {"route": "unmatched", "method": "other", "status": "404"}
    assert value(registry, "mjgate_http_requests_total", **labels) == 1


def test_task_finished(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.task_finished("imagine", "fast", "completed", 42.0)
    metrics.task_finished("imagine", "fast", "failed", None)  # no duration known: counted only
    for status, expected in (("completed", 1), ("failed", 1)):
        labels = {"task_type": "imagine", "mode": "fast", "status": status}
        assert value(registry, "mjgate_tasks_finished_total", **labels) == expected
    duration = {"task_type": "imagine", "mode": "fast"}
    assert value(registry, "mjgate_task_duration_seconds_count", **duration) == 1
    assert value(registry, "mjgate_task_duration_seconds_bucket", **duration, le="45.0") == 1
    assert value(registry, "mjgate_task_duration_seconds_bucket", **duration, le="30.0") == 0


def test_upstream_request(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.upstream_request("create", "200", 0.2)
    metrics.upstream_request("create", "not_sent", None)
    metrics.upstream_request("get", "timeout", None)
    metrics.upstream_request("get", "connection reset by peer", None)
    for op, status in (("create", "200"), ("create", "not_sent"), ("get", "timeout")):
        labels = {"op": op, "status": status}
        assert value(registry, "mjgate_upstream_requests_total", **labels) == 1
    assert value(registry, "mjgate_upstream_requests_total", op="get", status="other") == 1
    assert value(registry, "mjgate_upstream_request_duration_seconds_count", op="create") == 1
    assert value(registry, "mjgate_upstream_request_duration_seconds_count", op="get") == 0


def test_store_error(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.store_error("reserve")
    assert value(registry, "mjgate_store_errors_total", op="reserve") == 1


def test_small_fixed_label_sets_start_at_zero(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    assert value(registry, "mjgate_webhook_deliveries_total", outcome="failed") == 0
    assert value(registry, "mjgate_account_events_total", event="disabled") == 0
    assert value(registry, "mjgate_account_notifications_total", type="mj_bot_banned") == 0


def test_webhooks_notifications_account_events(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.webhook_delivery("retry")
    metrics.notification("mj_bot_captcha_required")
    metrics.notification("something_goapi_added")
    metrics.account_event("cooled")
    assert value(registry, "mjgate_webhook_deliveries_total", outcome="retry") == 1
    assert (
        value(registry, "mjgate_account_notifications_total", type="mj_bot_captcha_required") == 1
    )
    assert value(registry, "mjgate_account_notifications_total", type="other") == 1
    assert value(registry, "mjgate_account_events_total", event="cooled") == 1


def test_build_info(registry: CollectorRegistry) -> None:
    Metrics(registry, version="9.9.9")
    assert value(registry, "mjgate_build_info", version="9.9.9") == 1


# -- pool series ------------------------------------------------------------------------------


def test_pool_gauges_read_the_latest_snapshot(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.set_pool(snapshot())
    assert value(registry, "mjgate_store_up") == 1
    assert value(registry, "mjgate_pool_fast_seconds_remaining") == 7200
    assert value(registry, "mjgate_pool_fast_seconds_usable") == 3600
    assert value(registry, "mjgate_pool_slots", mode="fast", kind="capacity") == 24
    assert value(registry, "mjgate_pool_slots", mode="fast", kind="in_use") == 5
    assert value(registry, "mjgate_pool_slots", mode="relax", kind="capacity") == 6
    assert value(registry, "mjgate_pool_slots", mode="relax", kind="in_use") == 1
    assert value(registry, "mjgate_pool_relax_capable_accounts") == 2
    assert value(registry, "mjgate_staged_tasks") == 4
    pro = {"plan": "pro", "state": "active", "setting": "fast"}
    assert value(registry, "mjgate_accounts", **pro) == 2
    cooling = {"plan": "basic", "state": "cooling", "setting": "fast"}
    assert value(registry, "mjgate_accounts", **cooling) == 1
    # Combinations with no account read 0, not "no data".
    disabled = {"plan": "mega", "state": "disabled", "setting": "relax"}
    assert value(registry, "mjgate_accounts", **disabled) == 0
    assert value(registry, "mjgate_account_fast_seconds_remaining", bot_id="1201") == 3600
    assert value(registry, "mjgate_account_fast_seconds_remaining", bot_id="1203") == 0
    assert value(registry, "mjgate_account_in_flight", bot_id="1201", mode="fast") == 3
    assert value(registry, "mjgate_account_in_flight", bot_id="1201", mode="relax") == 1

    metrics.set_pool(snapshot(staged=0, per_account=()))  # the next scrape's figures
    assert value(registry, "mjgate_staged_tasks") == 0
    assert value(registry, "mjgate_account_fast_seconds_remaining", bot_id="1201") is None


def test_pacing_series(metrics: Metrics, registry: CollectorRegistry) -> None:
    paced = AccountFigures(1201, 0, 0, 0, AccountState.ACTIVE, True, 7, 2)
    metrics.set_pool(snapshot(eligible_now=3, per_account=(paced, AccountFigures(1202, 0, 0, 0))))
    assert value(registry, "mjgate_pool_accounts_eligible_now") == 3
    assert value(registry, "mjgate_account_jobs_today", bot_id="1201", mode="fast") == 7
    assert value(registry, "mjgate_account_jobs_today", bot_id="1201", mode="relax") == 2
    assert value(registry, "mjgate_account_jobs_today", bot_id="1202", mode="fast") is None
    assert value(registry, "mjgate_tasks_staged_total", reason="paced:gap") == 0
    metrics.task_staged("paced:gap")
    metrics.task_staged("some:new_reason")
    assert value(registry, "mjgate_tasks_staged_total", reason="paced:gap") == 1
    assert value(registry, "mjgate_tasks_staged_total", reason="other") == 1


def test_account_state_is_exported_per_account(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    metrics.set_pool(snapshot(per_account=(AccountFigures(1201, 0, 0, 0, AccountState.COOLING),)))
    assert value(registry, "mjgate_account_state", bot_id="1201", state="cooling") == 1
    assert value(registry, "mjgate_account_state", bot_id="1201", state="active") is None


def test_per_account_off_exports_no_bot_id_series(registry: CollectorRegistry) -> None:
    metrics = Metrics(registry, per_account=False)
    metrics.set_pool(snapshot())  # even if the snapshot has per-account rows
    body, _ = metrics.render()
    assert b"bot_id" not in body
    assert value(registry, "mjgate_pool_fast_seconds_remaining") == 7200


def test_store_down_reports_store_up_zero_and_no_pool_series(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    assert value(registry, "mjgate_store_up") == 0  # before the first scrape read anything
    metrics.set_pool(snapshot())
    metrics.set_pool(None)
    body, content_type = metrics.render()
    assert value(registry, "mjgate_store_up") == 0
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families.keys() >= POOL_FAMILIES  # declared, so the names stay known...
    assert all(families[name].samples == [] for name in POOL_FAMILIES)  # ...but no samples
    assert content_type.startswith("text/plain")


# -- exposition -------------------------------------------------------------------------------


def test_exposition_parses(metrics: Metrics) -> None:
    metrics.observe_request("/api/v1/task", "POST", 200, 0.01)
    metrics.task_created("imagine", "relax", "relax", "routed")
    metrics.set_pool(snapshot())
    body, _ = metrics.render()
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {
        "mjgate_http_requests",
        "mjgate_http_request_duration_seconds",
        "mjgate_tasks_created",
        "mjgate_tasks_finished",
        "mjgate_task_duration_seconds",
        "mjgate_upstream_requests",
        "mjgate_upstream_request_duration_seconds",
        "mjgate_store_errors",
        "mjgate_webhook_deliveries",
        "mjgate_account_notifications",
        "mjgate_account_events",
        "mjgate_build_info",
        "mjgate_store_up",
        *POOL_FAMILIES,
    } <= names


def test_series_do_not_grow_with_task_ids_or_clients(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    def traffic(ids: list[str]) -> None:
        for task_id in ids:  # hostile input in every free-text parameter
            metrics.observe_request("/api/v1/task/{task_id}", "GET", 200, 0.001)
            metrics.task_created(task_id, task_id, task_id, task_id)
            metrics.task_created("imagine", "fast", "fast", "routed")
            metrics.task_finished(task_id, task_id, task_id, 1.0)
            metrics.upstream_request(task_id, task_id, 0.1)
            metrics.webhook_delivery(task_id)
            metrics.notification(task_id)
            metrics.account_event(task_id)

    traffic([str(uuid.uuid4()) for _ in range(10)])
    before = sample_count(registry)
    traffic([str(uuid.uuid4()) for _ in range(500)])
    assert sample_count(registry) == before


def test_promtool_check_metrics_reports_nothing(metrics: Metrics) -> None:
    metrics.observe_request("/api/v1/task", "POST", 200, 0.01)
    metrics.task_created("imagine", "fast", "fast", "routed")
    metrics.task_finished("imagine", "fast", "completed", 50)
    metrics.upstream_request("create", "200", 0.2)
    metrics.store_error("reserve")
    metrics.set_pool(snapshot())
    body, _ = metrics.render()
    assert promtool("check", "metrics", stdin=body).strip() == ""
