"""MJGATE_REDIS_MIN_REPLICAS: the pipe's writes are acted upon only once that many replicas
have them (WAIT in the same round trip), on the Sentinel setup's primary and two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator

import pytest
import redis as redis_sync
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.local.topologies import SentinelSetup
from gateway.redisconn import hot_pipe, redis_client
from gateway.settings import Settings
from routing.errors import StoreError
from routing.keys import Keys
from routing.pipe import Pipe
from routing.store import PoolStore
from tests.harness import harness
from tests.routing.helpers import FakeClock, add, root


@pytest.fixture
def replicated(sentinel_setup: SentinelSetup) -> SentinelSetup:
    """The shared setup with both replicas in sync: a failover test before this one may have
    left a restarted server still catching up."""
    sentinel_setup.wait_healthy()
    return sentinel_setup


async def test_replies_wait_for_the_replicas(replicated: SentinelSetup, prefix: str) -> None:
    settings = Settings(redis_url=replicated.url, redis_timeout=1.0, redis_min_replicas=2)
    client = redis_client(settings)
    pipe = hot_pipe(settings, client)
    primary = replicated.primary()
    replicas = [p for p in replicated.data_ports if p != primary]
    try:
        writes = [pipe.send(b"SET", f"{prefix}:{n}", n) for n in range(20)]
        assert await asyncio.gather(*writes) == [b"OK"] * 20
        for port in replicas:  # acknowledged by both replicas before the replies were given
            with contextlib.closing(redis_sync.Redis(port=port)) as replica:
                assert replica.get(f"{prefix}:19") == b"19"
    finally:
        await pipe.aclose()
        await client.aclose()


@contextlib.contextmanager
def stopped(setup: SentinelSetup, port: int) -> Iterator[None]:
    """A replica frozen (SIGSTOP): it acknowledges nothing until it goes on (SIGCONT)."""
    process = setup.servers.processes[port]
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


async def test_a_write_waits_for_every_replica_not_the_first(
    replicated: SentinelSetup, prefix: str
) -> None:
    """With 1 required and 2 replicas, a write is acknowledged once both have it: whichever
    replica a failover promotes (Sentinel may choose either) holds every acknowledged write.
    A replica that stays away is then no longer waited for, and waited for again once back."""
    settings = Settings(redis_url=replicated.url, redis_timeout=2.0, redis_min_replicas=1)
    client = redis_client(settings)
    pipe = hot_pipe(settings, client)
    primary = replicated.primary()
    slow = next(p for p in replicated.data_ports if p != primary)
    try:
        assert await pipe.send(b"SET", f"{prefix}:warm", 1) == b"OK"
        with stopped(replicated, slow):
            started = time.monotonic()
            write = asyncio.ensure_future(pipe.send(b"SET", f"{prefix}:a", 1))
            await asyncio.sleep(0.3)
            assert not write.done()  # the frozen replica has not acknowledged it
        assert await write == b"OK"
        assert time.monotonic() - started >= 0.3
        with contextlib.closing(redis_sync.Redis(port=slow)) as replica:
            assert replica.get(f"{prefix}:a") == b"1"
        with stopped(replicated, slow):  # away past WAIT's bound (1 s): one is enough, ...
            assert await pipe.send(b"SET", f"{prefix}:b", 1) == b"OK"
            started = time.monotonic()
            assert await pipe.send(b"SET", f"{prefix}:c", 1) == b"OK"
            assert time.monotonic() - started < 0.9  # ... and it is not waited for again
        await asyncio.sleep(1.2)  # counted again (ROLE, each second)
        await pipe.send(b"SET", f"{prefix}:d", 1)
        with stopped(replicated, slow):
            write = asyncio.ensure_future(pipe.send(b"SET", f"{prefix}:e", 1))
            await asyncio.sleep(0.3)
            assert not write.done()  # back: waited for again
        assert await write == b"OK"
    finally:
        await pipe.aclose()
        await client.aclose()


async def test_too_few_replicas_fail_every_command_of_the_write(
    replicated: SentinelSetup, prefix: str
) -> None:
    settings = Settings(redis_url=replicated.url, redis_timeout=0.6, redis_min_replicas=3)
    client = redis_client(settings)
    pipe = hot_pipe(settings, client)
    try:
        started = time.monotonic()
        first, second = pipe.send(b"SET", f"{prefix}:a", 1), pipe.send(b"INCR", f"{prefix}:b")
        for reply in (first, second):
            with pytest.raises(ResponseError, match=r"NOREPLICAS .* 2 of 3 replicas"):
                await reply
        assert 0.25 <= time.monotonic() - started < 0.6  # WAIT: half the timeout
        assert await client.get(f"{prefix}:a") == b"1"  # applied on the primary all the same
    finally:
        await pipe.aclose()
        await client.aclose()


def test_the_setting() -> None:
    assert Settings.from_env({}).redis_min_replicas == 0
    assert Settings.from_env({"MJGATE_REDIS_MIN_REPLICAS": "1"}).redis_min_replicas == 1
    with pytest.raises(ValueError, match="MJGATE_REDIS_MIN_REPLICAS"):
        Settings.from_env({"MJGATE_REDIS_MIN_REPLICAS": "-1"})


async def test_a_create_waits_for_replicas_or_answers_503(
    replicated: SentinelSetup, redis: Redis, prefix: str
) -> None:
    """Through the service: with the replicas there, creates complete."""
    settings = Settings(redis_url=replicated.url, redis_timeout=1.0, redis_min_replicas=2)
    client = redis_client(settings)
    try:
        async with harness(client, prefix, settings=settings) as h:
            created = await h.create()
            assert created.status_code == 200, created.text
            await h.wait_status(created.json()["data"]["task_id"], "completed")
    finally:
        await client.aclose()


async def test_without_the_replicas_a_reservation_is_a_store_error(
    redis: Redis, keys: Keys
) -> None:
    """On a server without replicas: the service answers 503 store_unavailable (StoreError)
    and never sends the task upstream."""
    store = PoolStore(redis, keys, clock=FakeClock(), pipe=Pipe.of(redis, min_replicas=1))
    try:
        with pytest.raises(StoreError, match="NOREPLICAS"):
            await add(store, 1)
        with pytest.raises(StoreError, match="NOREPLICAS"):
            await root(store, "t1")
    finally:
        await store.pipe.aclose()
