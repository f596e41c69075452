"""MJGATE_REDIS_MIN_REPLICAS: the pipe's writes are acted upon only once that many replicas
have them (WAIT in the same round trip), on the Sentinel setup's primary and two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import time

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
