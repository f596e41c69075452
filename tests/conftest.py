"""Test session wiring: a real Redis for every test, each under its own key prefix.

Redis is REDIS_URL if set, else 127.0.0.1:6379 if it answers, else an embedded server started
for the session (gateway.local.embedded). No test flushes the database: each test's keys live
under a fresh prefix and are deleted afterwards, so tests may run side by side.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from gateway.local.embedded import EmbeddedRedis
from gateway.logs import LOGGER
from routing.keys import Keys
from tests.canary import CanaryHandler


def _local_redis_answers() -> bool:
    try:
        client = redis_sync.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
        ok = bool(client.ping())
        client.close()
        return ok
    except redis_sync.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    if _local_redis_answers():
        yield "redis://127.0.0.1:6379/0"
        return
    # A short path: unix socket paths are limited to ~100 bytes.
    embedded = EmbeddedRedis(Path(str(tmp_path_factory.mktemp("redis"))))
    yield embedded.start()
    embedded.stop()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"t{uuid.uuid4().hex[:12]}"
    yield value
    client = redis_sync.Redis.from_url(redis_url)
    try:
        batch = list(client.scan_iter(match=f"{value}:*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session", autouse=True)
def canary_logs() -> Iterator[CanaryHandler]:
    """Every mjgate log record of the session, at debug level, is checked for the canary
    secrets (tests/canary.py); a leak fails the session."""
    handler = CanaryHandler()
    LOGGER.addHandler(handler)
    previous = LOGGER.level
    LOGGER.setLevel("DEBUG")
    yield handler
    LOGGER.removeHandler(handler)
    LOGGER.setLevel(previous)
    assert not handler.leaks, f"secrets leaked into logs: {handler.leaks[:3]}"
