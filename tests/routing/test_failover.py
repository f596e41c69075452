"""The hot-path Pipe follows the primary: a Sentinel failover, a cluster primary killed, a
demoted primary (READONLY), a slot moved (MOVED) or being migrated (ASK). Real servers; the
shared topologies are healed before each test ends (the killed server restarts as a
replica)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from redis.exceptions import AskError, ConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.local.topologies import Cluster, SentinelSetup, Servers, free_port
from gateway.redisconn import redis_client
from gateway.settings import Settings
from routing.errors import StoreError
from routing.keys import Keys
from routing.pipe import Address, Pipe
from routing.resolvers import ClusterSlots, SentinelPrimary, key_slot
from routing.results import Outcome
from routing.scripts import pool_library, pool_script
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, reserved, root

TIMEOUT = 1.0  # MJGATE_REDIS_TIMEOUT of these tests
RECOVERY = 2.0  # at most this long after the topology has a new primary


def node(port: int) -> contextlib.closing[redis_sync.Redis]:
    return contextlib.closing(redis_sync.Redis(port=port, socket_timeout=2))


def on(port: int, *command: str | int) -> Any:
    with node(port) as client:
        return client.execute_command(*command)


async def _store(url: str, keys: Keys, *, functions: bool = True) -> tuple[Redis, PoolStore]:
    client = redis_client(Settings(redis_url=url, redis_timeout=TIMEOUT))
    pipe = Pipe.of(client, functions=functions)
    store = PoolStore(client, keys, clock=FakeClock(), timeout=3 * TIMEOUT, pipe=pipe)
    await store.load_scripts()
    await add(store, 1, fast_slots=1000)
    return client, store


async def _until_recovered(store: PoolStore, deadline: float) -> tuple[float, list[str]]:
    """Reserve and settle on `store` every 50 ms until it works: when, and the errors met
    before (each a StoreError: what the service answers with 503 store_unavailable)."""
    errors: list[str] = []
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            reservation = reserved(await root(store, f"after-{n}"))
            await store.settle(reservation.task_id, Outcome.COMPLETED)
            return time.monotonic(), errors
        except StoreError as exc:
            errors.append(exc.op)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no recovery; last errors: {errors[-3:]}")


async def _when_changed(read: Callable[[], int], old: int) -> float:
    """When `read()` (polled every 50 ms, errors ignored) first differs from `old`."""
    while True:
        try:
            if await asyncio.to_thread(read) != old:
                return time.monotonic()
        except (redis_sync.RedisError, OSError):
            pass
        await asyncio.sleep(0.05)


async def _redis_py_follows(client: Redis, key: str, deadline: float) -> bool:
    """Whether redis-py's client reads `key` (kept, or lost with the unreplicated write)
    before `deadline`, retrying every 50 ms."""
    while True:
        try:
            return await client.get(key) in (b"v", None)
        except (ConnectionError, RedisTimeoutError):
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("functions", [False, True], ids=["eval", "functions"])
async def test_sentinel_failover(
    sentinel_setup: SentinelSetup, keys: Keys, functions: bool
) -> None:
    """As EVAL scripts, the promoted replica has none cached (NOSCRIPT, then EVAL caches
    them); as Redis Functions, it has the library (replicated) and runs FCALL at once."""
    old = sentinel_setup.primary()
    on(old, "FUNCTION", "FLUSH")  # the topology is shared: other tests loaded the library
    client, store = await _store(sentinel_setup.url, keys, functions=functions)
    on(old, "WAIT", len(sentinel_setup.data_ports) - 1, 2000)  # the replicas have it, or not
    try:
        assert isinstance(store.pipe.resolver, SentinelPrimary)
        sha = pool_script("reserve_root").sha
        replica = next(p for p in sentinel_setup.data_ports if p != old)
        # the topology is shared by the session: a replica that was a primary in an earlier
        # test may still cache scripts; start from what a fresh replica has (none)
        for port in sentinel_setup.data_ports:
            if port != old:
                on(port, "SCRIPT", "FLUSH")
        assert on(replica, "SCRIPT", "EXISTS", sha) == [0]  # not replicated
        library = pool_library().name
        loaded = on(replica, "FUNCTION", "LIST", "LIBRARYNAME", library)
        assert bool(loaded) == functions  # FUNCTION LOAD is replicated

        sentinel_setup.servers.kill(old)
        killed = time.monotonic()
        switch = asyncio.create_task(_when_changed(sentinel_setup.primary, old))
        recovered, errors = await _until_recovered(store, killed + 30)
        assert set(errors) <= {"reserve_root", "settle"}  # 503 store_unavailable, no other
        switched = await asyncio.wait_for(switch, 30)
        assert recovered - switched <= RECOVERY, (switched - killed, recovered - killed)
        new = sentinel_setup.primary()
        # the promoted replica had no scripts: NOSCRIPT, then EVAL cached them there; or it
        # had the library, and FCALL needed no EVAL
        assert on(new, "SCRIPT", "EXISTS", sha) == [0 if functions else 1]
        assert store.pipe.scripts.functions == functions
        assert await client.ping()  # redis-py's client followed too
    finally:
        await store.aclose()
        await store.pipe.aclose()
        await client.aclose()
        if old not in sentinel_setup.servers.processes:
            sentinel_setup.servers.restart(old)
        sentinel_setup.wait_healthy()


async def test_cluster_primary_killed(cluster: Cluster, keys: Keys) -> None:
    client, store = await _store(cluster.url, keys)
    old = cluster.primary_of(keys.pool_meta())
    survivor = next(p for p in cluster.ports if p != old)
    pool_slot = key_slot(keys.pool_meta().encode())

    def owner() -> int:
        slots = on(survivor, "CLUSTER", "SLOTS")
        return next(int(s[2][1]) for s in slots if s[0] <= pool_slot <= s[1])

    try:
        assert isinstance(store.pipe.resolver, ClusterSlots)
        await client.set(keys.task("kept"), "v")
        cluster.servers.kill(old)
        killed = time.monotonic()
        switch = asyncio.create_task(_when_changed(owner, old))
        recovered, errors = await _until_recovered(store, killed + 30)
        assert set(errors) <= {"reserve_root", "settle"}  # 503 store_unavailable, no other
        switched = await asyncio.wait_for(switch, 30)
        assert recovered - switched <= RECOVERY, (switched - killed, recovered - killed)
        # redis-py's client follows too: its slot map is refreshed after a refused connection
        # (503 store_unavailable meanwhile), from whichever node answers first, which may not
        # have heard of the promotion yet; it works within the same bound
        assert await _redis_py_follows(client, keys.task("kept"), switched + RECOVERY)
    finally:
        await store.aclose()
        await store.pipe.aclose()
        await client.aclose()
        if old not in cluster.servers.processes:
            cluster.servers.restart(old)
        cluster.wait_healthy()


async def test_a_demoted_primary_answers_readonly_and_the_pipe_asks_again(
    tmp_path: Path, prefix: str
) -> None:
    servers = Servers(tmp_path)
    first, second = free_port(), free_port()
    for port in (first, second):
        servers.start(port, ["--port", str(port), "--bind", "127.0.0.1", "--save", ""])
    named = [first]
    asked: list[int] = []

    async def ask() -> tuple[str, int]:
        asked.append(named[0])
        return "127.0.0.1", named[0]

    pipe = Pipe(SentinelPrimary(ask, Address()), timeout=TIMEOUT)
    try:
        assert await pipe.call(b"SET", f"{prefix}:k", "1") == b"OK"
        on(first, "REPLICAOF", "127.0.0.1", second)  # demoted
        named[0] = second
        assert await pipe.call(b"SET", f"{prefix}:k", "2") == b"OK"  # READONLY, asked again
        assert asked == [first, second]
        assert on(second, "GET", f"{prefix}:k") == b"2"
    finally:
        await pipe.aclose()
        servers.stop()


async def test_a_replica_named_as_primary_is_refused_on_connect(tmp_path: Path) -> None:
    servers = Servers(tmp_path)
    primary, replica = free_port(), free_port()
    servers.start(primary, ["--port", str(primary), "--bind", "127.0.0.1", "--save", ""])
    servers.start(
        replica,
        ["--port", str(replica), "--bind", "127.0.0.1", "--replicaof", "127.0.0.1", str(primary)],
    )

    async def ask() -> tuple[str, int]:
        return "127.0.0.1", replica

    pipe = Pipe(SentinelPrimary(ask, Address()), timeout=TIMEOUT)
    try:
        try:
            await pipe.call(b"PING")
        except ConnectionError as exc:
            assert "not a primary" in str(exc)
        else:
            raise AssertionError("a replica was used as the primary")
    finally:
        await pipe.aclose()
        servers.stop()


async def test_moved_after_a_manual_failover_and_ask_during_a_migration(
    cluster: Cluster, prefix: str
) -> None:
    key = f"{prefix}:{{moving}}"
    slot = key_slot(key.encode())
    client = redis_client(Settings(redis_url=cluster.url, redis_timeout=TIMEOUT))
    pipe = Pipe.of(client)
    try:
        assert await pipe.call(b"SET", key, "v") == b"OK"
        old = cluster.primary_of(key)
        old_id = on(old, "CLUSTER", "MYID").decode()
        replica = next(
            port
            for port in cluster.ports
            if port != old and on(port, "ROLE")[0] == b"slave" and on(port, "ROLE")[2] == old
        )
        on(replica, "CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 20
        while on(old, "ROLE")[0] != b"slave":
            assert time.monotonic() < deadline, "the manual failover did not happen"
            await asyncio.sleep(0.05)
        assert await pipe.call(b"GET", key) == b"v"  # MOVED: sent again to the new primary
        assert await pipe.call(b"GET", key) == b"v"  # the slot map was asked again
        assert pipe.resolver.address(slot) is not None
        assert pipe.resolver.address(slot).port == replica  # type: ignore[union-attr]

        # ASK: the slot is being migrated from `replica` (its primary now) to `old`'s
        # primary... any other primary; a missing key there is answered with ASK
        target = next(
            port
            for port in cluster.ports
            if port not in (replica, old) and on(port, "ROLE")[0] == b"master"
        )
        source_id = on(replica, "CLUSTER", "MYID").decode()
        target_id = on(target, "CLUSTER", "MYID").decode()
        assert old_id not in (source_id, target_id)
        on(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        on(replica, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        try:
            with node(replica) as source_node, node(target) as target_node:
                fresh = f"{prefix}:{{moving}}:new"
                assert await pipe.call(b"SET", fresh, "n") == b"OK"  # ASK, ASKING, SET
                pipeline = target_node.pipeline(transaction=False)  # one connection: ASKING, GET
                pipeline.execute_command("ASKING").get(fresh).execute_command("ASKING").delete(
                    fresh
                )
                assert pipeline.execute()[1] == b"n"  # written where ASK pointed
                with pytest.raises(AskError):  # not on the source, which points there
                    source_node.exists(fresh)
                assert await pipe.call(b"GET", key) == b"v"  # still on the source
        finally:
            for port in (replica, target):
                on(port, "CLUSTER", "SETSLOT", slot, "STABLE")
    finally:
        await pipe.aclose()
        await client.aclose()
        cluster.wait_healthy()
