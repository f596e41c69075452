"""deploy/: alert rules pass promtool (syntax and unit tests), the Grafana dashboard loads and
covers what an operator asks of it, and every metric either of them queries is one mjgate
declares. The compose file and the Kubernetes manifests are well-formed.

promtool comes with the Debian/Ubuntu `prometheus` package (`apt-get install -y prometheus`) or
any Prometheus release tarball; set PROMTOOL to use another binary. Without it these tests skip,
except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from routing.model import AccountState, Plan, Setting, SlotKind
from routing.poolfile import parse_pool_file
from routing.snapshot import AccountFigures, PoolSnapshot

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "mjgate.json"
METRIC_NAME = re.compile(r"\bmjgate_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def promtool_binary() -> str:
    """The promtool to run: $PROMTOOL, else the one on PATH; skip (fail under CI) if none."""
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found:
        return found
    message = (
        "promtool not found: install it with `apt-get install -y prometheus` (Debian/Ubuntu) "
        "or from a Prometheus release, or set PROMTOOL=/path/to/promtool"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def promtool(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    """Run promtool; fail the test with its output unless it exits 0. Returns its output."""
    result = subprocess.run(
        [promtool_binary(), *args], cwd=cwd, input=stdin, capture_output=True, timeout=60
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def sample_snapshot() -> PoolSnapshot:
    return PoolSnapshot(
        accounts={(Plan.PRO, AccountState.ACTIVE, Setting.FAST): 1},
        fast_seconds_left=3600,
        slot_capacity={SlotKind.FAST: 12, SlotKind.RELAX: 3},
        slots_in_use={SlotKind.FAST: 1, SlotKind.RELAX: 0},
        relax_capable=1,
        staged=0,
        per_account=(AccountFigures(7, 3600, 1, 0),),
    )


def declared_sample_names() -> set[str]:
    """Every sample name a Metrics instance can expose, read from a real exposition."""
    metrics = Metrics()
    metrics.set_pool(sample_snapshot())
    body, _ = metrics.render()
    names: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        assert family.type in SUFFIXES, f"{family.name}: type {family.type} not expected"
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# -- Prometheus ------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    assert "SUCCESS" in promtool("check", "rules", str(ALERTS))


def test_alert_rules_unit_tests_pass() -> None:
    promtool("test", "rules", "alerts.test.yaml", cwd=ALERTS.parent)


def test_alerts_cover_the_issue() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "MjgateNoFastTimeLeft",
        "MjgateFastTimeRunningOut",
        "MjgateAccountsUnavailable",
        "MjgateStagedTasksPilingUp",
        "MjgateUpstreamErrors",
        "MjgateStoreDown",
    } <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_unit_tests_cover_at_least_two_alerts() -> None:
    tests = yaml.safe_load((ALERTS.parent / "alerts.test.yaml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert {"MjgateNoFastTimeLeft", "MjgateStoreDown"} <= tested


def test_compose_prometheus_config_is_valid() -> None:
    promtool("check", "config", "prometheus.yml", cwd=ALERTS.parent)


def test_kubernetes_scrape_example_keeps_the_labels_alerts_group_by() -> None:
    # Not run through promtool: Debian's build leaves out Kubernetes service discovery.
    config = yaml.safe_load((ALERTS.parent / "kubernetes-scrape.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    targets = {rule.get("target_label") for rule in job["relabel_configs"]}
    assert {"namespace", "pod"} <= targets
    assert config["rule_files"] == ["alerts.yaml"]


# -- Grafana ---------------------------------------------------------------------------------


def test_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "mjgate" and dashboard["title"]
    assert "id" not in dashboard or dashboard["id"] is None  # importable into any Grafana
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels(dashboard):
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"], panel["title"]


# What the issue asks an operator to read from the dashboard: (words in a panel title, a
# metric its queries read, a string its queries contain).
OPERATOR_QUESTIONS = [
    ("fast time left (pool)", "mjgate_pool_fast_seconds_remaining", ""),
    ("fast time left per account", "mjgate_account_fast_seconds_remaining", ""),
    ("slots busy", "mjgate_pool_slots", 'kind="in_use"'),
    ("staged tasks", "mjgate_staged_tasks", ""),
    ("fast work that ran relax, by reason", "mjgate_tasks_created_total", "fallback_relax"),
    ("upstream latency", "mjgate_upstream_request_duration_seconds_bucket", ""),
    ("upstream error rate", "mjgate_upstream_requests_total", "5.."),
    ("accounts cooling / paused / disabled", "mjgate_accounts", "cooling|paused|disabled"),
    ("accounts not active", "mjgate_account_state", 'state!="active"'),
]


@pytest.mark.parametrize(("title", "metric", "fragment"), OPERATOR_QUESTIONS)
def test_dashboard_answers_the_operator(title: str, metric: str, fragment: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    matching = [p for p in dashboard_panels(dashboard) if title in p["title"].lower()]
    assert matching, f"no panel titled like {title!r}"
    exprs = [t["expr"] for p in matching for t in p["targets"]]
    assert any(metric in METRIC_NAME.findall(e) and fragment in e for e in exprs), exprs


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every dashboard query (Grafana's variables replaced by values)."""
    exprs = [e.replace("$__rate_interval", "5m").replace("$job", ".+") for e in dashboard_exprs()]
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))


def test_every_queried_metric_is_declared() -> None:
    declared = declared_sample_names()
    queried = {
        name
        for expr in [*dashboard_exprs(), *(rule["expr"] for rule in alert_rules())]
        for name in METRIC_NAME.findall(expr)
    }
    assert queried, "no mjgate_* metric found in the dashboard or the rules"
    assert queried - declared == set()


# -- compose and Kubernetes ------------------------------------------------------------------


def test_compose_stack_has_redis_two_replicas_prometheus_grafana() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [
        name for name, spec in services.items() if spec.get("command") == ["mjgate", "serve"]
    ]
    assert len(replicas) == 2
    assert {"redis", "prometheus", "grafana"} <= set(services)
    scrape = yaml.safe_load((ALERTS.parent / "prometheus.yml").read_text())["scrape_configs"]
    targets = scrape[0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{name}:8080" for name in replicas)
    for name in replicas:
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://redis:")


def test_kubernetes_manifests_are_well_formed() -> None:
    k8s = DEPLOY / "k8s"
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    documents = [
        doc
        for path in sorted(k8s.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    for doc in documents:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
    for resource in kustomization["resources"]:
        assert (k8s / resource).is_file(), resource
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "http", "containerPort": 8080} in container["ports"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "mjgate"  # what kubernetes-scrape.yml keeps


def test_pool_files_the_deployments_apply_are_valid() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    volume = compose["services"]["mjgate-1"]["volumes"][0]  # ${MJGATE_POOL:-<default>}:<path>
    default = re.fullmatch(r"\$\{MJGATE_POOL:-(.+)\}:/etc/mjgate/pool\.yaml:ro", volume)
    assert default, volume
    parse_pool_file((DEPLOY / default.group(1)).read_text())
    documents = yaml.safe_load_all((DEPLOY / "k8s" / "configmap.yaml").read_text())
    (pool,) = [doc for doc in documents if doc["metadata"]["name"] == "mjgate-pool"]
    assert parse_pool_file(pool["data"]["pool.yaml"]).accounts
