"""deploy/: alert rules pass promtool (syntax and unit tests), the Grafana dashboard loads and
covers what an operator asks of it, and every metric either of them queries is one mjgate
declares. The compose files refuse to start without their secrets, publish on localhost only
and keep the admin API on its own port; the Kubernetes manifests match Kubernetes' own schemas
(kubernetes-validate ships them: no network needed) and say what docs/deploy.md promises.

promtool comes with the Debian/Ubuntu `prometheus` package (`apt-get install -y prometheus`) or
any Prometheus release tarball; set PROMTOOL to use another binary. Without it these tests skip,
except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate.utils
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import Metrics
from gateway.metrics.labels import DECISIONS
from routing.model import AccountState, Plan, Setting, SlotKind
from routing.poolfile import parse_pool_file
from routing.results import Decision
from routing.snapshot import AccountFigures, PoolSnapshot
from tests.deploy_files import (
    COMPOSE,
    COMPOSE_HA,
    DEPLOY,
    K8S,
    MissingVariable,
    applied_documents,
    compose,
    k8s_documents,
    k8s_manifests,
    kustomization,
    one,
    read_env_file,
    run_init_env,
    variable_uses,
)

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
    ("fast time usable (pool)", "mjgate_pool_fast_seconds_usable", ""),
    ("fast time left, pool", "mjgate_pool_fast_seconds_remaining", ""),
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


DECISION_MATCHER = re.compile(r'decision(=~|!~|=|!=)"([^"]*)"')
# the decisions of tasks that asked for fast or turbo (or inherited it) and ran relax
FAST_RAN_RELAX = {
    Decision.FALLBACK_RELAX,
    Decision.INHERITED_RELAX_SETTING,
    Decision.INHERITED_RELAX_NO_FAST_TIME,
    Decision.PINNED_RELAX_SETTING,
    Decision.PINNED_RELAX_NO_FAST_TIME,
}


def decisions_matched(expr: str) -> set[str]:
    """The `decision` label values a query's matchers select (Prometheus anchors regexes)."""
    selected = set(DECISIONS)
    for op, pattern in DECISION_MATCHER.findall(expr):
        hit = {d for d in DECISIONS if (re.fullmatch(pattern, d) if "~" in op else d == pattern)}
        selected &= hit if op.startswith("=") else DECISIONS - hit
    return selected


def test_queried_decisions_are_label_values() -> None:
    """Every `decision` matcher in the dashboard and the rules selects a value the metric has,
    and the "ran relax" panels select exactly the decisions of fast work that ran relax."""
    exprs = [*dashboard_exprs(), *(rule["expr"] for rule in alert_rules())]
    with_decision = [e for e in exprs if DECISION_MATCHER.search(e)]
    assert with_decision
    for expr in with_decision:
        assert decisions_matched(expr), expr
        if "_relax:" in expr:
            assert decisions_matched(expr) == FAST_RAN_RELAX, expr


# -- compose ---------------------------------------------------------------------------------

COMPOSE_SECRETS = (
    "MJGATE_ADMIN_TOKEN",
    "MJGATE_CLIENT_KEYS",
    "REDIS_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
HA_SECRETS = (*COMPOSE_SECRETS, "REDIS_SENTINEL_PASSWORD")
ADMIN_PORT = "8181"


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The secrets deploy/init-env.sh generates, as Compose would read them."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    result = run_init_env(path)
    assert result.returncode == 0, result.stderr
    return read_env_file(path)


def mjgate_replicas(services: dict[str, Any]) -> list[str]:
    return [name for name, spec in services.items() if spec.get("command") == ["mjgate", "serve"]]


def test_compose_stack_has_redis_two_replicas_prometheus_grafana(env_file: dict[str, str]) -> None:
    services = compose(env=env_file)["services"]
    replicas = mjgate_replicas(services)
    assert len(replicas) == 2
    assert {"redis", "prometheus", "grafana"} <= set(services)
    scrape = yaml.safe_load((ALERTS.parent / "prometheus.yml").read_text())["scrape_configs"]
    targets = scrape[0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{name}:8080" for name in replicas)
    password = env_file["REDIS_PASSWORD"]
    for name in replicas:
        env = services[name]["environment"]
        assert env["REDIS_URL"] == f"redis://:{password}@redis:6379/0"
        assert env["MJGATE_ADMIN_TOKEN"] == env_file["MJGATE_ADMIN_TOKEN"]
        assert env["MJGATE_CLIENT_KEYS"] == env_file["MJGATE_CLIENT_KEYS"]
    redis = services["redis"]
    assert redis["command"][redis["command"].index("--requirepass") + 1] == password
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["environment"]["REDISCLI_AUTH"] == password  # its healthcheck's password


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_HA], ids=lambda p: p.name)
def test_compose_has_no_default_secret(path: Path) -> None:
    """Every secret is ${VAR:?message}: unset or empty, Compose refuses to start."""
    uses = variable_uses(path.read_text())
    for name, op in uses:
        if name in HA_SECRETS:
            assert op == ":?", f"{path.name}: ${{{name}}} must be ${{{name}:?...}}"
    for old_default in ("compose-admin-token", "compose-demo-key", "replace-with"):
        assert old_default not in path.read_text()


@pytest.mark.parametrize(
    ("path", "secrets"),
    [(COMPOSE, COMPOSE_SECRETS), (COMPOSE_HA, ("REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"))],
    ids=["main", "ha"],
)
def test_compose_refuses_to_start_without_each_secret(
    path: Path, secrets: tuple[str, ...], env_file: dict[str, str]
) -> None:
    compose(path, env=env_file)  # complete: it starts
    for name in secrets:
        for value in (None, ""):
            env = {k: v for k, v in env_file.items() if k != name}
            if value is not None:
                env[name] = value
            with pytest.raises(MissingVariable) as refused:
                compose(path, env=env)
            assert refused.value.name == name
            assert "init-env.sh" in str(refused.value)  # the message says what to do


def test_init_env_writes_private_random_secrets_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    result = run_init_env(first)
    assert result.returncode == 0, result.stderr
    assert run_init_env(second).returncode == 0
    values, others = read_env_file(first), read_env_file(second)
    assert set(HA_SECRETS) <= set(values)
    for name in HA_SECRETS:
        assert re.fullmatch(r"[0-9a-f]{64}", values[name]), name
        assert values[name] != others[name], name
        assert values[name] in result.stdout  # printed once, for the operator
    assert len(set(values.values())) == len(values)
    assert first.stat().st_mode & 0o777 == 0o600
    before = first.read_text()
    again = run_init_env(first)
    assert again.returncode != 0 and "exists" in again.stderr
    assert first.read_text() == before  # never overwritten


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of each published port."""
    rows = []
    for port in service.get("ports", []):
        parts = str(port).rsplit(":", 2)
        assert len(parts) == 3, f"{port}: publish on an explicit address"
        rows.append((parts[0], parts[1], parts[2]))
    return rows


def test_compose_publishes_on_localhost_and_keeps_admin_apart(env_file: dict[str, str]) -> None:
    services = compose(env=env_file)["services"]
    assert "ports" not in services["redis"]
    for name, service in services.items():
        for address, _, _ in published(service):
            assert address == "127.0.0.1", f"{name} publishes on {address}"
    # MJGATE_BIND opts the client ports (only those) into other interfaces.
    exposed = compose(env={**env_file, "MJGATE_BIND": "0.0.0.0"})["services"]
    for name in mjgate_replicas(exposed):
        env = exposed[name]["environment"]
        assert env["MJGATE_ADMIN_PORT"] == ADMIN_PORT  # /admin/v1 not on the client port
        rows = published(exposed[name])
        assert {container for _, _, container in rows} == {env["MJGATE_PORT"], ADMIN_PORT}
        for address, _, container in rows:
            assert address == ("0.0.0.0" if container == env["MJGATE_PORT"] else "127.0.0.1")


def test_compose_grafana_has_no_anonymous_admin(env_file: dict[str, str]) -> None:
    env = compose(env=env_file)["services"]["grafana"]["environment"]
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED", "false") == "false"
    assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer") != "Admin"
    assert "GF_AUTH_DISABLE_LOGIN_FORM" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == env_file["GRAFANA_ADMIN_PASSWORD"]


def test_compose_redis_ha_override(env_file: dict[str, str]) -> None:
    base = compose(env=env_file)["services"]
    ha = compose(COMPOSE_HA, env=env_file)["services"]
    password, sentinel_password = env_file["REDIS_PASSWORD"], env_file["REDIS_SENTINEL_PASSWORD"]
    sentinels = sorted(name for name in ha if name.startswith("sentinel-"))
    assert sentinels == ["sentinel-1", "sentinel-2", "sentinel-3"]
    nodes = ["redis", "redis-replica-1", "redis-replica-2"]
    for name in nodes:
        command = ha[name]["command"]
        option = {command[i]: command[i + 1] for i in range(1, len(command) - 1, 1)}
        assert option["--requirepass"] == password and option["--masterauth"] == password
        assert option["--appendonly"] == "yes"
        assert option["--replica-announce-ip"] == name
    for name in nodes[1:]:
        assert ha[name]["command"][-3:] == ["--replicaof", "redis", "6379"]
    for name in sentinels:
        env = ha[name]["environment"]
        assert env["SENTINEL_ANNOUNCE"] == name and env["PRIMARY_HOST"] == "redis"
        assert env["REDIS_SENTINEL_PASSWORD"] == sentinel_password
    hosts = ",".join(f"{name}:26379" for name in sentinels)
    for name in mjgate_replicas(base):
        env = ha[name]["environment"]
        assert env["REDIS_URL"] == f"redis+sentinel://:{password}@{hosts}/mjgate/0"
        assert env["MJGATE_SENTINEL_PASSWORD"] == sentinel_password
        assert set(ha[name]["depends_on"]) == set(sentinels)


def test_pool_files_the_deployments_apply_are_valid() -> None:
    volume = compose()["services"]["mjgate-1"]["volumes"][0]  # ${MJGATE_POOL:-<default>}:<path>
    default = re.fullmatch(r"\$\{MJGATE_POOL:-(.+)\}:/etc/mjgate/pool\.yaml:ro", volume)
    assert default, volume
    parse_pool_file((DEPLOY / default.group(1)).read_text())
    pool = one(k8s_documents(K8S / "configmap.yaml"), "ConfigMap", "mjgate-pool")
    assert parse_pool_file(pool["data"]["pool.yaml"]).accounts


# -- Kubernetes: schemas ---------------------------------------------------------------------

# The oldest Kubernetes the manifests support (topologySpreadConstraints' matchLabelKeys is on
# by default from 1.27) and the newest the validator ships schemas for.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.utils.latest_version())
# Custom resources: their schemas come with the operator, not with Kubernetes.
WITHOUT_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def validate_manifest(document: dict[str, Any], version: str) -> None:
    """Kubernetes' own schema, strict: an unknown or misspelt field is an error too."""
    kubernetes_validate.utils.validate(document, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", k8s_manifests(), ids=lambda p: p.name)
def test_kubernetes_manifests_match_the_schemas(path: Path, version: str) -> None:
    for document in k8s_documents(path):
        if (document["apiVersion"], document["kind"]) in WITHOUT_SCHEMA:
            assert document["apiVersion"] and document["metadata"]["name"]
            continue
        validate_manifest(document, version)


def deployment() -> dict[str, Any]:
    return copy.deepcopy(one(k8s_documents(K8S / "deployment.yaml"), "Deployment", "mjgate"))


def pod(document: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = document["spec"]["template"]["spec"]
    return spec


BREAKAGES: dict[str, Any] = {
    "misspelt field": lambda d: pod(d)["containers"][0].update(imagePullPolcy="IfNotPresent"),
    "label value a number": lambda d: d["metadata"]["labels"].update(tier=1),
    "replicas as text": lambda d: d["spec"].update(replicas="two"),
    "port as a list": lambda d: pod(d)["containers"][0]["ports"][0].update(containerPort=[8080]),
    "no selector": lambda d: d["spec"].pop("selector"),
    "env without a name": lambda d: pod(d)["containers"][0].update(env=[{"value": "x"}]),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_schema_validation_rejects_a_broken_manifest(breakage: str) -> None:
    document = deployment()
    validate_manifest(document, KUBERNETES_VERSIONS[-1])  # the unbroken one passes
    BREAKAGES[breakage](document)
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        validate_manifest(document, KUBERNETES_VERSIONS[-1])


def test_schema_validation_needs_no_network() -> None:
    """The schemas ship inside the package: validation runs with sockets disabled."""
    script = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network disabled for this check')\n"
        "socket.socket = socket.create_connection = socket.getaddrinfo = refuse\n"
        "import yaml, kubernetes_validate.utils as kv\n"
        "n = 0\n"
        "for path in sys.argv[1:]:\n"
        "    for doc in yaml.safe_load_all(open(path)):\n"
        "        if doc and doc['kind'] != 'ServiceMonitor':\n"
        "            kv.validate(doc, kv.latest_version(), strict=True); n += 1\n"
        "print(n)\n"
    )
    paths = [str(p) for p in k8s_manifests()]
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 10


def test_kustomize_renders_what_the_tests_read() -> None:
    """kustomization.yaml itself is valid: kustomize renders the documents these tests check,
    each in the namespace, each still matching the schemas."""
    kubectl, kustomize = shutil.which("kubectl"), shutil.which("kustomize")
    if not (kubectl or kustomize):
        pytest.skip("neither kubectl nor kustomize is installed")
    command = [kubectl, "kustomize"] if kubectl else [str(kustomize), "build"]
    result = subprocess.run([*command, str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    names = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert names == sorted((d["kind"], d["metadata"]["name"]) for d in applied_documents())
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "mjgate", document["metadata"]
        validate_manifest(document, KUBERNETES_VERSIONS[-1])


# -- Kubernetes: what the manifests say ------------------------------------------------------

# Files kept out of kustomization.yaml on purpose, each applied by hand (docs/deploy.md).
NOT_APPLIED = {"secret.example.yaml", "ingress.yaml", "servicemonitor.yaml"}


def test_kustomization_applies_every_manifest_but_no_secret() -> None:
    resources = kustomization()["resources"]
    assert kustomization()["namespace"] == "mjgate"
    assert sorted(resources) == sorted(p.name for p in k8s_manifests() if p.name not in NOT_APPLIED)
    assert all(doc["kind"] != "Secret" for doc in applied_documents())
    # What the Deployment and Redis need from the Secrets the operator creates.
    example = k8s_documents(K8S / "secret.example.yaml")
    assert set(one(example, "Secret", "mjgate")["stringData"]) >= {
        "GOAPI_API_KEY",
        "MJGATE_ADMIN_TOKEN",
        "MJGATE_CLIENT_KEYS",
        "REDIS_URL",
    }
    assert "password" in one(example, "Secret", "mjgate-redis")["stringData"]


def test_kubernetes_deployment_image_env_ports_spread() -> None:
    documents = applied_documents()
    settings = one(documents, "ConfigMap", "mjgate")["data"]
    (container,) = pod(deployment())["containers"]
    image, _, tag = container["image"].rpartition(":")
    version = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]
    assert image == "mjgate" and tag == version  # no registry host; the registry is kustomize's
    assert container["imagePullPolicy"] == "IfNotPresent"
    # Every key of the ConfigMap and the Secret reaches the container; nothing is listed.
    assert container["envFrom"] == [
        {"configMapRef": {"name": "mjgate"}},
        {"secretRef": {"name": "mjgate"}},
    ]
    assert "env" not in container
    assert "REDIS_URL" not in settings  # it holds the password: in the Secret
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {
        "http": int(settings["MJGATE_PORT"]),
        "admin": int(settings["MJGATE_ADMIN_PORT"]),
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    spread = pod(deployment())["topologySpreadConstraints"]
    by_node = [c for c in spread if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert by_node[0]["nodeTaintsPolicy"] == "Honor"  # a tainted node is no empty domain
    assert by_node[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mjgate"}
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "mjgate"  # what kubernetes-scrape.yml keeps


def test_kubernetes_admin_api_is_not_behind_the_client_service() -> None:
    documents = [*applied_documents(), *k8s_documents(K8S / "ingress.yaml")]
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    client, admin = services["mjgate"], services["mjgate-admin"]
    assert [port["targetPort"] for port in client["spec"]["ports"]] == ["http"]
    assert [port["targetPort"] for port in admin["spec"]["ports"]] == ["admin"]
    for service in services.values():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    ingress = one(documents, "Ingress", "mjgate")
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert sorted(path["path"] for path in paths) == ["/api/v1", "/webhooks/goapi"]
    for path in paths:
        assert path["backend"]["service"] == {"name": "mjgate", "port": {"name": "http"}}
    policy = one(documents, "NetworkPolicy", "mjgate")
    admin_rules = [
        rule
        for rule in policy["spec"]["ingress"]
        if any(port["port"] == "admin" for port in rule.get("ports", []))
    ]
    assert admin_rules and all(rule.get("from") for rule in admin_rules)
    monitor = one(k8s_documents(K8S / "servicemonitor.yaml"), "ServiceMonitor", "mjgate")
    assert monitor["spec"]["selector"]["matchLabels"] == client["metadata"]["labels"]
    assert client["metadata"]["labels"] != admin["metadata"]["labels"]


def test_kubernetes_redis_has_a_password_and_persistence() -> None:
    redis = one(applied_documents(), "StatefulSet", "redis")
    (container,) = pod(redis)["containers"]
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--appendonly") + 1] == "yes"
    env = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container["env"]}
    assert env["REDIS_PASSWORD"] == {"name": "mjgate-redis", "key": "password"}
    assert env["REDISCLI_AUTH"] == env["REDIS_PASSWORD"]  # the probe authenticates
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert redis["spec"]["volumeClaimTemplates"]


def test_deploy_doc_covers_every_secret_manifest_and_port() -> None:
    doc = (DEPLOY.parent / "docs" / "deploy.md").read_text()
    for name in HA_SECRETS:
        assert f"`{name}`" in doc, name
    for path in [*k8s_manifests(), COMPOSE, COMPOSE_HA, DEPLOY / "init-env.sh"]:
        assert path.name in doc, path.name
    assert ADMIN_PORT in doc and "MJGATE_SENTINEL_PASSWORD" in doc
    readme = (DEPLOY.parent / "README.md").read_text()
    assert "(docs/deploy.md)" in readme
