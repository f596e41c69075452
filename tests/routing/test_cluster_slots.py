"""The key layout on a real Redis Cluster, which refuses any command, transaction or script
touching keys of two slots: every pool script runs there, and every group of keys that one
command or transaction touches together shares a slot."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from gateway.local.topologies import Cluster
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.redisconn import redis_client
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord
from gateway.webhooks.outbound import Outbox
from routing.catalog import Catalog
from routing.keys import Keys
from routing.model import AccountState, Mode, Strategy
from routing.pacing import Pacing
from routing.pipe import Pipe
from routing.resolvers import key_slot
from routing.results import Outcome
from routing.schedule import CheckSchedule
from routing.scripts import SCRIPT_NAMES, pool_library, source
from routing.store import PoolStore
from routing.upkeep import recount_fast
from tests.routing.helpers import FakeClock, add, child, reserved, root, staged


@pytest.fixture
async def cluster_client(cluster: Cluster) -> AsyncIterator[RedisCluster]:
    client = redis_client(Settings(redis_url=cluster.url, redis_timeout=5.0))
    assert isinstance(client, RedisCluster)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


class ScriptWatch:
    """MONITOR on every primary: the runs of commands scripts made (a script runs alone on
    its node, so consecutive `lua` commands are one script), as the sets of slots of the
    test's keys each run touched. Redis Cluster refuses a cross-slot transaction or
    multi-key command by itself, but not a legacy script reaching a key of another slot
    that the same node holds: this is what catches that."""

    def __init__(self, client: RedisCluster, prefix: str) -> None:
        self.client = client
        self.marker = f"{prefix}:"
        self.runs: list[set[int]] = []
        self.functions: set[str] = set()  # the functions FCALL called
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: list[asyncio.Event] = []

    async def __aenter__(self) -> ScriptWatch:
        for node in self.client.get_primaries():
            ready = asyncio.Event()
            self._ready.append(ready)
            self._tasks.append(asyncio.create_task(self._watch(node.host, node.port, ready)))
        for ready in self._ready:
            await ready.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.2)  # the last commands reach the monitors
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, host: str, port: int, ready: asyncio.Event) -> None:
        node = Redis(host=host, port=port)
        run: set[int] = set()
        try:
            async with node.monitor() as monitor:
                ready.set()
                while True:
                    info = await monitor.next_command()
                    if info["client_type"] != "lua":
                        called = info["command"].split(" ", 2)
                        if called[0].upper() == "FCALL":
                            self.functions.add(called[1])
                        if run:
                            self.runs.append(run)
                            run = set()
                        continue
                    words = info["command"].split(" ")
                    run |= {key_slot(w.encode()) for w in words if w.startswith(self.marker)}
        finally:
            if run:
                self.runs.append(run)
            await node.aclose()


async def test_the_watch_sees_a_script_crossing_slots(
    cluster_client: RedisCluster, keys: Keys, prefix: str
) -> None:
    """The check below can fail: a legacy script reaching a key of another slot that the
    same node holds runs (Redis doesn't refuse it), and the watch sees it."""
    node = cluster_client.get_node_from_key(keys.pool_meta())
    other = next(
        keys.task(str(n))
        for n in range(10_000)
        if cluster_client.get_node_from_key(keys.task(str(n))) == node
    )
    assert key_slot(other.encode()) != key_slot(keys.pool_meta().encode())
    script = "redis.call('GET', KEYS[1]); return redis.call('GET', ARGV[1])"
    async with ScriptWatch(cluster_client, prefix) as watch:
        await cluster_client.eval(script, 1, keys.pool_meta(), other)
    assert [len(run) for run in watch.runs] == [2]


@pytest.mark.parametrize("functions", [False, True], ids=["eval", "functions"])
async def test_every_script_runs_on_a_cluster_within_one_slot(
    cluster_client: RedisCluster, keys: Keys, prefix: str, functions: bool
) -> None:
    """As EVAL scripts: flushed first and not loaded, each call caches its script on the
    pool's primary (EVAL after NOSCRIPT), so SCRIPT EXISTS shows that each one ran. As Redis
    Functions: the library flushed, then loaded, and each script's FCALL seen. Either way the
    watch shows that each touched one slot. The records' and the outbox's scripts too."""
    node = cluster_client.get_node_from_key(keys.pool_meta())
    await cluster_client.execute_command("SCRIPT", "FLUSH", target_nodes=node)
    await cluster_client.execute_command("FUNCTION", "FLUSH", target_nodes=node)
    clock = FakeClock()
    pipe = Pipe.of(cluster_client, functions=functions)  # type: ignore[arg-type]
    store = PoolStore(cluster_client, keys, clock=clock, pipe=pipe)  # type: ignore[arg-type]
    if functions:
        await store.load_scripts()
    records = RecordStore(cluster_client, keys, ttl=60, pipe=store.pipe)  # type: ignore[arg-type]
    outbox = Outbox(cluster_client, keys, records, Metrics(CollectorRegistry()), allow_private=True)  # type: ignore[arg-type]
    try:
        async with ScriptWatch(cluster_client, prefix) as watch:
            await add(store, 1, fast_slots=2)  # apply_account
            await add(store, 2, fast_slots=2)
            # paced: both edges pass in the hour below, so the tick plans again (pace_plan)
            hours = ("00:00-15:10", "15:20-24:00")  # paused: it takes none of the work below
            await add(store, 3, state=AccountState.PAUSED, pacing=Pacing(active_hours=hours))
            await Catalog(store).set_strategy(Strategy.MOST_FAST_LEFT)  # rescore
            first = reserved(await root(store, "t1"))  # reserve_root
            reserved(await child(store, "c1", first.bot_id))  # reserve_child
            for n in range(3):
                await root(store, f"s{n}")
            staged(await root(store, "s3"))
            await store.restage_key("client", weight=2, tags=(), max_in_flight=None)  # restage_key
            assert await store.cancel_staged("s3")  # cancel_staged
            assert await store.extend_lease("t1", 60)  # extend_lease
            await store.run_relax("c1")  # run_relax
            await store.settle("t1", Outcome.COMPLETED)  # settle
            await store.dispatch_staged(5, 60)  # dispatch_staged
            clock.advance(3600)
            await store.claim_expired_leases(10, 30)  # claim_leases
            await store.tick()  # tick
            await recount_fast(store)  # recount_fast
            await store.set_fast_time(2, 100)  # set_fast_time
            await store.set_state(2, AccountState.PAUSED)  # set_state
            await Catalog(store).remove_account(2, force=True)  # remove_account
            schedule = CheckSchedule(
                store.pipe, keys, interval=5, claim_seconds=30, gets_per_second=10, clock=clock
            )
            await schedule.add("t9", clock() - 1)
            await schedule.claim(5)  # track_claim
            await schedule.take("t9")  # track_take
            record = TaskRecord("t1", "client", "imagine", "pending", {}, upstream_id="u1")
            assert await records.save(record)  # record_save
            assert await records.save_unless_terminal(record.evolve(status="completed"))
            await cluster_client.zadd(keys.outbox(), {"t1": 0})
            assert await outbox.run_once() == 1  # outbox_claim
    finally:
        await outbox.aclose()
        await store.aclose()
        await pipe.aclose()
    shas = [hashlib.sha1(source(name).encode()).hexdigest() for name in SCRIPT_NAMES]
    exists = await cluster_client.execute_command("SCRIPT", "EXISTS", *shas, target_nodes=node)
    if functions:
        assert watch.functions == {pool_library().function(name) for name in SCRIPT_NAMES}
        assert set(exists) == {0}
    else:
        assert dict(zip(SCRIPT_NAMES, exists, strict=True)) == dict.fromkeys(SCRIPT_NAMES, 1)
    assert len(watch.runs) >= len(SCRIPT_NAMES)
    assert [run for run in watch.runs if len(run) > 1] == []


def test_keys_used_together_share_a_slot_and_the_rest_spread(keys: Keys) -> None:
    def slot(key: str) -> int:
        return key_slot(key.encode())

    pool = slot(keys.pool_meta())
    for key in (
        keys.account(7), keys.account_history(7), keys.reservation("t"), keys.staged_entry("t"),
        keys.pool_totals(), keys.accounts(), keys.index("fs"), keys.leases(),
        keys.staged_queue(), keys.staged_deadlines(), keys.staged_per_client(),
    ):  # fmt: skip
        assert slot(key) == pool, key
    # one transaction each: create/revoke a client key; a rate check; outbox bookkeeping
    assert slot(keys.client_key("abc")) == slot(keys.client_keys())
    assert slot(keys.client_rate("abc", 100)) == slot(keys.client_rate("abc", 99))
    assert slot(keys.outbox()) == slot(keys.outbox_attempts())
    # spread: task records, their maps, idempotency keys and rate counters
    spread = {slot(keys.task(f"task-{n}")) for n in range(50)}
    spread |= {slot(keys.upstream_task(f"up-{n}")) for n in range(50)}
    spread |= {slot(keys.idempotency("client", f"k{n}")) for n in range(50)}
    assert len(spread) > 100 and pool not in {slot(keys.task("task-0"))}


def test_a_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Keys("mj{x}")


async def test_mode_children_keep_the_parents_slot(
    cluster_client: RedisCluster, keys: Keys
) -> None:
    """A relax child on a cluster: reserve_child reads the parent's account (same slot)."""
    store = PoolStore(cluster_client, keys, clock=FakeClock())  # type: ignore[arg-type]
    try:
        await add(store, 1, fast_slots=2, relax_slots=2)
        parent = reserved(await root(store, "p", Mode.RELAX))
        assert reserved(await child(store, "c", parent.bot_id, Mode.RELAX)).bot_id == 1
    finally:
        await store.aclose()
