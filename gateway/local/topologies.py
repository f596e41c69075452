"""Redis topologies started on this machine: a 3 + 3 Redis Cluster and a 1 + 2 Sentinel setup
with three sentinels, on free 127.0.0.1 ports in a given folder, with `redis-server` (7+) from
PATH. No persistence (`--save ""`, no AOF): stopping them discards every key.

Used by the tests (tests/conftest.py starts each on first use, once per session, and the
failover tests kill and restart primaries) and by the bench's `topologies` part. Tooling only:
nothing the service runs imports this module.

Each takes a few seconds to start. `Servers.restart` brings a killed server back on its port
(it rejoins as a replica), so later users still find three nodes per role.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis as redis_sync

NODE_TIMEOUT_MS = 1000
SERVICE = "mymaster"


_HANDED_OUT: set[int] = set()  # never the same port twice in one process: two picks made
# before either is bound (a server and its emulator, say) would otherwise collide


def free_port(extra_offset: int = 0) -> int:
    """A port free now (and `port + extra_offset` too, for a cluster's bus port), never one
    this process was given before."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        wanted = {port, port + extra_offset}
        if not wanted & _HANDED_OUT and all(_free(p) for p in wanted):
            _HANDED_OUT.update(wanted)
            return port
    raise RuntimeError("no free port found")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis_sync.RedisError, OSError):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Servers:
    """redis-server processes by port, each with its command line (to restart it)."""

    folder: Path
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[int, list[str]] = field(default_factory=dict)

    def start(self, port: int, args: list[str]) -> None:
        workdir = self.folder / str(port)
        workdir.mkdir(exist_ok=True)
        command = ["redis-server", *args]
        self.commands[port] = command
        with (workdir / "out.log").open("ab") as log:  # the child keeps its own descriptor
            self.processes[port] = subprocess.Popen(
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )
        client = redis_sync.Redis(port=port, socket_timeout=1)
        try:
            wait_for(lambda: bool(client.ping()), f"redis-server on {port}")
        finally:
            client.close()

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    def restart(self, port: int) -> None:
        command = self.commands[port]
        self.start(port, command[1:])

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
        for process in self.processes.values():
            process.wait()
        self.processes.clear()


class Cluster:
    """3 primaries + 3 replicas; `seeds` are the six nodes' ports."""

    def __init__(self, folder: Path) -> None:
        self.servers = Servers(folder)
        self.ports = [free_port(10000) for _ in range(6)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> Cluster:
        for port in self.ports:
            self.servers.start(
                port,
                [
                    "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    "--cluster-replica-validity-factor", "0",
                    "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
                ],
            )  # fmt: skip
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        """Every live node sees the cluster ok, three primaries each with a replica in sync."""

        def healthy() -> bool:
            for port in self.servers.processes:
                client = redis_sync.Redis(port=port, socket_timeout=1)
                try:
                    info = client.cluster("INFO")
                    nodes = client.cluster("NODES")
                    replication = client.info("replication")
                finally:
                    client.close()
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
                if info["cluster_state"] != "ok":
                    return False
                live = [n for n in nodes.values() if "fail" not in n["flags"]]
                if len(live) < len(self.servers.processes):
                    return False
                replicas = [n for n in live if "slave" in n["flags"] and n["connected"]]
                if len(replicas) < 3:
                    return False
            return True

        wait_for(healthy, "a healthy cluster", timeout=60)

    def primary_of(self, key: str) -> int:
        client = redis_sync.RedisCluster(host="127.0.0.1", port=self.ports[0])
        try:
            return int(client.get_node_from_key(key).port)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def stop(self) -> None:
        self.servers.stop()


class SentinelSetup:
    """One primary, two replicas, three sentinels watching `SERVICE`."""

    def __init__(self, folder: Path) -> None:
        self.servers = Servers(folder)
        self.folder = folder
        self.data_ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        sentinels = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{sentinels}/{SERVICE}"

    def start(self) -> SentinelSetup:
        primary, *replicas = self.data_ports
        common = [
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip
        self.servers.start(primary, ["--port", str(primary), *common])
        for port in replicas:
            self.servers.start(
                port, ["--port", str(port), *common, "--replicaof", "127.0.0.1", str(primary)]
            )
        for port in self.sentinel_ports:
            conf = self.folder / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 2\n"
            )
            self.servers.start(port, [str(conf), "--sentinel"])
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        """Every sentinel sees a primary up, two replicas and the two other sentinels."""

        def healthy() -> bool:
            for port in self.sentinel_ports:
                client = redis_sync.Redis(port=port, socket_timeout=1)
                try:
                    state = cast(dict[str, Any], client.sentinel_master(SERVICE))
                    replicas = client.sentinel_slaves(SERVICE)
                finally:
                    client.close()
                up = [r for r in replicas if not r["is_sdown"] and r["master-link-status"] == "ok"]
                if state["is_sdown"] or state["num-other-sentinels"] < 2 or len(up) < 2:
                    return False
            return self._replicated()

        wait_for(healthy, "a healthy Sentinel setup", timeout=60)

    def _replicated(self) -> bool:
        """The servers agree with the sentinels (whose view can lag by seconds after a
        failover): the primary streams to both replicas, each linked to it and in sync."""
        primary = self.primary()
        client = redis_sync.Redis(port=primary, socket_timeout=1)
        try:
            info = client.info("replication")
        finally:
            client.close()
        links = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        online = [link for link in links if link.get("state") == "online"]
        return info["role"] == "master" and len(online) == len(self.data_ports) - 1

    def primary(self) -> int:
        client = redis_sync.Redis(port=self.sentinel_ports[0], socket_timeout=1)
        try:
            _, port = cast(tuple[str, int], client.sentinel_get_master_addr_by_name(SERVICE))
            return int(port)
        finally:
            client.close()

    def stop(self) -> None:
        self.servers.stop()
