"""The service's Redis client for the topology REDIS_URL names, and what `check-config` says.

    redis_client(settings) -> Redis      standalone, Sentinel-managed or cluster client
    hot_pipe(settings, client) -> Pipe   the hot path's connection(s) for that client
    print_topology(settings) -> int      check-config's line (exit code 1: unreachable)
    describe_topology(settings) -> str   connects and reports what it found

Every client has MJGATE_REDIS_TIMEOUT on connecting and on every read and redis-py never
retries a timed-out or refused call: an outage is a 503 `store_unavailable` within that time.
The hot path's `routing.pipe.Pipe.of(client)` follows the same topology.

Sentinel: redis-py's `Sentinel(...).master_for(service)`; every new connection asks the
sentinels for the primary, so the client follows a failover. Cluster: redis-py's
`RedisCluster`, which follows MOVED/ASK itself. It is not a subclass of `Redis` but has the
same command methods, pipelines (transactions only within one slot) and `register_script`
(scripts with all their keys in one slot); mjgate's key layout (`routing.keys`) keeps every
transaction and script in one slot, so the rest of mjgate uses it as a `Redis`.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from gateway.settings import Settings
from routing.keys import Keys
from routing.pipe import Pipe
from routing.resolvers import key_slot
from routing.topology import Topology

MAX_CONNECTIONS = 2048


class SentinelRedis(Redis):
    """The client of a Sentinel-managed primary; closing it also closes the sentinels'
    clients (redis-py leaves them to the `Sentinel` object, which nothing else holds)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


def topology(settings: Settings) -> Topology | None:
    """REDIS_URL's topology; None for the embedded Redis (no REDIS_URL)."""
    if not settings.redis_url:
        return None
    return Topology.parse(
        settings.redis_url,
        sentinel_username=settings.sentinel_username,
        sentinel_password=settings.sentinel_password,
    )


def redis_client(settings: Settings) -> Redis:
    """The service's Redis client. The pool is large rather than blocking (a blocking pool
    costs ~25% more per call, measured): more than 2,048 Redis calls in flight at once in one
    replica (per node, on a cluster) also answer 503."""
    found = topology(settings) or Topology.parse("redis://127.0.0.1:6379/0")
    timeouts: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
    }
    if found.kind == "standalone":
        pool = ConnectionPool.from_url(
            found.url, retry=Retry(NoBackoff(), 0), max_connections=MAX_CONNECTIONS, **timeouts
        )
        return Redis.from_pool(pool)  # closing the client closes its pool
    tls: dict[str, Any] = {"ssl": True, **found.tls_options} if found.tls else {}
    auth: dict[str, Any] = {"username": found.username, "password": found.password}
    if found.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [(node.host, node.port) for node in found.nodes],
            sentinel_kwargs={
                "username": found.sentinel_username,
                "password": found.sentinel_password,
                **timeouts,
                **tls,
            },
            **timeouts,
        )
        return cast(
            Redis,
            sentinel.master_for(
                found.service,
                redis_class=SentinelRedis,
                db=found.db,
                retry=Retry(NoBackoff(), 0),
                max_connections=MAX_CONNECTIONS,
                **auth,
                **tls,
            ),
        )
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(node.host, node.port) for node in found.nodes],
        # MOVED/ASK are followed; a few quick retries ride out a failover's CLUSTERDOWN
        retry=Retry(ExponentialBackoff(cap=settings.redis_timeout / 4), 2),
        max_connections=MAX_CONNECTIONS,
        **auth,
        **tls,
        **timeouts,
    )
    return cast(Redis, cluster)  # see the module docstring


def hot_pipe(settings: Settings, client: Redis) -> Pipe:
    """The hot path's pipelined connection(s), following `client`'s topology, with
    MJGATE_REDIS_MIN_REPLICAS and MJGATE_REDIS_FUNCTIONS."""
    return Pipe.of(
        client, min_replicas=settings.redis_min_replicas, functions=settings.redis_functions
    )


def print_topology(settings: Settings) -> int:
    """For `mjgate check-config`: print `redis: <what describe_topology found>` and return 0,
    or print why Redis can't be reached to stderr and return 1."""
    try:
        found = asyncio.run(describe_topology(settings))
    except RedisError as exc:
        print(f"mjgate: cannot reach Redis ({topology(settings)}): {exc}", file=sys.stderr)
        return 1
    print(f"redis: {found}")
    return 0


async def describe_topology(settings: Settings) -> str:
    """Connect with `settings` and say what was found, e.g. `Redis Cluster via 127.0.0.1:7000:
    3 primaries, 3 replicas, all 16384 slots served; the pool's slot 785 on 127.0.0.1:7001`.
    Redis errors propagate (the caller says Redis is unreachable), as redis-py's errors."""
    found = topology(settings)
    if found is None:
        return f"embedded Redis in {settings.data_dir} (started by `mjgate serve`)"
    client = redis_client(settings)
    try:
        return await _describe(client, found, settings)
    except (OSError, RedisClusterException) as exc:  # not RedisErrors: made one here
        raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
    finally:
        await client.aclose()


async def _describe(client: Redis, found: Topology, settings: Settings) -> str:
    if isinstance(client, RedisCluster):
        return f"{found}: {await _cluster(client, Keys(settings.redis_prefix))}"
    info = await client.info("server")
    replication = await client.info("replication")
    where = ""
    if found.kind == "sentinel":
        host, port = await client.connection_pool.get_master_address()  # type: ignore[attr-defined]
        where = f" at {host}:{port}"
    return (
        f"{found}: {_server(info)}, role {replication.get('role')}{where}, "
        f"{replication.get('connected_slaves', 0)} replica(s) connected"
    )


async def _cluster(client: RedisCluster, keys: Keys) -> str:
    await client.initialize()
    nodes = (await client.cluster_nodes()).values()
    live = [n for n in nodes if n.get("connected") and "fail" not in str(n.get("flags"))]
    primaries = [n for n in live if "master" in str(n.get("flags"))]
    pool_slot = key_slot(keys.pool_meta().encode())
    owner = client.get_node_from_key(keys.pool_meta())
    info = await client.info("server", target_nodes=RedisCluster.RANDOM)
    state = await client.cluster_info(target_nodes=RedisCluster.RANDOM)
    return (
        f"{_server(info)}, {len(primaries)} primaries, {len(live) - len(primaries)} replicas, "
        f"cluster_state {state.get('cluster_state')}, "
        f"{state.get('cluster_slots_assigned')} of 16384 slots assigned; the pool's slot "
        f"{pool_slot} on {owner.host}:{owner.port}"
        if owner
        else "no node for the pool's slot"
    )


def _server(info: dict[str, Any]) -> str:
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version', '?')}"
