"""What the bench measures against, started on demand and cleaned up at the end.

- the emulator (`python -m emulator`, uvicorn, one worker), in instant mode for the create and
  poll throughput figures, and a slow one for the upstream-calls-per-poll figure;
- the reference proxy (`python -m bench.reference_proxy`), in front of the instant emulator;
- mjgate (`mjgate serve`), each instance under a fresh Redis key prefix;
- Redis: `--redis-url`, else REDIS_URL, else 127.0.0.1:6379 when it answers, else a private
  embedded server. The bench never flushes a database: it deletes its own prefixes.

The bench pool: mjgate allows at most 1,000 slots per account (routing.accounts.MAX_SLOTS),
so "enough slots that nothing stages" is 100 accounts x 1,000 fast slots (100,000 slots) with
100,000 fast hours each. With the emulator in instant mode the create answer already says
`completed` and mjgate settles at once; the big pool keeps runs against a `pending` upstream
(whose tasks keep their slots for the run) from staging too.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.procs import BenchError, Service, Services, child_env, free_port
from routing.accounts import MAX_SLOTS, AccountSpec
from routing.model import Plan, Strategy
from routing.poolfile import dump_pool

CLIENT_KEY = "bench-client-key"
GOAPI_KEY = "bench"
POOL_ACCOUNTS = 100
POOL_FAST_HOURS = 100_000
FIRST_BOT_ID = 7001
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def bench_bot_ids() -> list[int]:
    return list(range(FIRST_BOT_ID, FIRST_BOT_ID + POOL_ACCOUNTS))


def new_prefix(kind: str) -> str:
    return f"mjbench-{kind}-{uuid.uuid4().hex[:8]}"


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix` (SCAN + UNLINK in batches); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
        batch.append(key)
        if len(batch) >= 5_000:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


@dataclass
class Gateway:
    service: Service
    prefix: str

    @property
    def url(self) -> str:
        return self.service.url


class Lab:
    """Owns the bench's processes (through `services`) and Redis key prefixes."""

    def __init__(self, services: Services, workdir: Path, redis_url: str) -> None:
        self.services = services
        self.workdir = workdir
        self.redis_url = redis_url
        self.prefixes: list[str] = []
        self._emulators: dict[str, Service] = {}
        self._proxy: Service | None = None
        self._gateways: dict[str, Gateway] = {}

    # -- files -----------------------------------------------------------------------------
    def _accounts_file(self) -> Path:
        path = self.workdir / "emulator-accounts.json"
        accounts = [
            {
                "bot_id": bot_id,
                "plan": "mega",
                "setting": "fast",
                "fast_seconds": 1e12,
                "fast_slots": 100_000,
                "relax_slots": 100_000,
                "name": f"bench-{bot_id}",
            }
            for bot_id in bench_bot_ids()
        ]
        path.write_text(json.dumps(accounts))
        return path

    def _pool_file(self) -> Path:
        path = self.workdir / "pool.yaml"
        specs = [
            AccountSpec(
                bot_id=bot_id,
                name=f"bench-{bot_id}",
                plan=Plan.MEGA,
                fast_seconds_left=POOL_FAST_HOURS * 3600,
                fast_slots=MAX_SLOTS,
                relax_slots=MAX_SLOTS,
            )
            for bot_id in bench_bot_ids()
        ]
        path.write_text(dump_pool(Strategy.LEAST_BUSY, specs))
        return path

    # -- processes -------------------------------------------------------------------------
    def emulator(
        self, name: str = "emulator", *, pending: float = 0.0, processing: float = 0.0
    ) -> Service:
        """An emulator; `pending` = `processing` = 0 is instant mode."""
        if name in self._emulators:
            return self._emulators[name]
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            str(port),
            "--accounts",
            str(self._accounts_file()),
        ]
        if pending == 0 and processing == 0:
            args.append("--instant")
        else:
            args += ["--pending-seconds", str(pending), "--processing-seconds", str(processing)]
        service = self.services.start(
            name, args, port=port, ready_path="/_emulator/health", env=child_env({})
        )
        self._emulators[name] = service
        return service

    def proxy(self) -> Service:
        """The reference proxy, in front of the instant emulator."""
        if self._proxy is None:
            port = free_port()
            upstream = self.emulator().url
            args = [
                sys.executable,
                "-m",
                "bench.reference_proxy",
                "--port",
                str(port),
                "--upstream",
                upstream,
            ]
            self._proxy = self.services.start(
                "reference", args, port=port, ready_path="/healthz", env=child_env({})
            )
        return self._proxy

    def gateway(
        self,
        name: str = "mjgate",
        *,
        upstream: Service | None = None,
        extra: dict[str, str] | None = None,
    ) -> Gateway:
        """`mjgate serve` in front of `upstream` (default: the instant emulator)."""
        if name in self._gateways:
            return self._gateways[name]
        upstream = upstream or self.emulator()
        port = free_port()
        prefix = new_prefix(name)
        self.prefixes.append(prefix)
        env = child_env(
            {
                "REDIS_URL": self.redis_url,
                "MJGATE_REDIS_PREFIX": prefix,
                "GOAPI_API_KEY": GOAPI_KEY,
                "GOAPI_BASE_URL": upstream.url,
                "MJGATE_HOST": "127.0.0.1",
                "MJGATE_PORT": str(port),
                "MJGATE_CLIENT_KEYS": CLIENT_KEY,
                "MJGATE_POOL_FILE": str(self._pool_file()),
                "MJGATE_LOG_LEVEL": "warning",
                "MJGATE_DATA_DIR": str(self.workdir / "mjgate"),
                **(extra or {}),
            }
        )
        script = Path(sys.executable).with_name("mjgate")
        args = (
            [str(script), "serve"]
            if script.exists()
            else [
                sys.executable,
                "-c",
                "import sys; from gateway.cli.main import main; sys.exit(main())",
                "serve",
            ]
        )
        service = self.services.start(name, args, port=port, ready_path="/readyz", env=env)
        gateway = Gateway(service, prefix)
        self._gateways[name] = gateway
        return gateway

    def main_gateway(self) -> Gateway:
        """mjgate in front of the instant emulator. Leases of an hour: the tasks a run creates
        complete upstream at once but keep their reservations (no webhooks), and the
        reconciler must not start settling them in the middle of a measurement."""
        return self.gateway("mjgate", extra={"MJGATE_LEASE_SECONDS": "3600"})

    def stop_processes(self) -> None:
        """Stop every process (their Redis keys stay until `cleanup`): the Redis part runs
        with no mjgate around, so no background loop's scripts land in its windows."""
        self.services.stop_all()
        self._emulators, self._gateways, self._proxy = {}, {}, None

    def stop(self, service: Service) -> None:
        self.services.stop(service)
        self._emulators = {k: v for k, v in self._emulators.items() if v is not service}
        self._gateways = {k: v for k, v in self._gateways.items() if v.service is not service}
        if self._proxy is service:
            self._proxy = None

    # -- Redis -----------------------------------------------------------------------------
    def sync_redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def cleanup(self) -> None:
        """Stop every process, then delete every key prefix this lab used."""
        self.services.stop_all()
        if not self.prefixes:
            return
        client = self.sync_redis()
        try:
            for prefix in self.prefixes:
                delete_prefix(client, prefix)
        finally:
            client.close()


def resolve_redis(cli_url: str | None, workdir: Path, services: Services) -> str:
    """The Redis to use; starts a private embedded server when none is given or running."""
    url = cli_url or os.environ.get("REDIS_URL") or ""
    if url:
        return url
    client = redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=0.5)
    try:
        client.ping()
        return LOCAL_REDIS
    except redis.RedisError:
        pass
    finally:
        client.close()
    from gateway.local.embedded import EmbeddedRedis, EmbeddedRedisError

    embedded = EmbeddedRedis(workdir / "redis")
    try:
        url = embedded.start()
    except EmbeddedRedisError as exc:
        raise BenchError(f"no Redis: set REDIS_URL or start one on 6379 ({exc})") from exc
    services.on_exit(embedded.stop)
    return url
