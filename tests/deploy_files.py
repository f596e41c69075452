"""Reading deploy/ as the tools that use it would: the Kubernetes manifests as kubectl gets them
(every YAML document of a file), the compose files with Compose's variable interpolation, and
the env file deploy/init-env.sh writes. Helpers of tests/test_deploy.py and the Redis HA test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_HA = DEPLOY / "compose.redis-ha.yaml"
INIT_ENV = DEPLOY / "init-env.sh"

# Compose's interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}, $VAR.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(ValueError):
    """A ${VAR:?error} whose variable is unset or empty: Compose refuses to start."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise MissingVariable(name, arg)
        if op in (":-", "-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def variable_uses(text: str) -> list[tuple[str, str | None]]:
    """Every (variable, operator) the text interpolates, e.g. ("REDIS_PASSWORD", ":?")."""
    return [
        (m.group("name") or m.group("bare"), m.group("op"))
        for m in _VARIABLE.finditer(text)
        if m.group(0) != "$$"
    ]


def compose(path: Path = COMPOSE, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A compose file as Compose reads it: interpolated with `env` (raises MissingVariable like
    Compose does), or raw when `env` is None."""
    text = path.read_text()
    loaded: dict[str, Any] = yaml.safe_load(text if env is None else interpolate(text, env))
    return loaded


def k8s_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_manifests() -> list[Path]:
    """Every Kubernetes manifest of deploy/k8s (kustomization.yaml is kustomize's)."""
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def applied_documents() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/k8s` applies (this kustomization only lists resources)."""
    return [doc for name in kustomization()["resources"] for doc in k8s_documents(K8S / name)]


def one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def run_init_env(target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(INIT_ENV), str(target)], capture_output=True, text=True, timeout=30
    )


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values
