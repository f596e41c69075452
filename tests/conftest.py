"""Test session wiring: a real Redis for every test, each under its own key prefix.

Redis is REDIS_URL if set, else 127.0.0.1:6379 if it answers, else an embedded server started
for the session (gateway.local.embedded). No test flushes the database: each test's keys live
under a fresh prefix and are deleted afterwards, so tests may run side by side.

Tests marked `topologies` (a module's `pytestmark`) run three times: on that standalone server,
on a Sentinel setup and on a Redis Cluster (gateway.local.topologies), each started on first use
and shared by the session. Their `redis` fixture is the service's own client for that topology
(gateway.redisconn), so everything built on it (Pipe.of, the stores, the app) follows it.
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
from gateway.local.topologies import Cluster, SentinelSetup
from gateway.logs import LOGGER
from gateway.redisconn import redis_client
from gateway.settings import Settings
from routing.keys import Keys
from tests.canary import CanaryHandler

TOPOLOGIES = ("standalone", "sentinel", "cluster")
TOPOLOGY_TIMEOUT = 5.0  # the tests' Redis timeout on Sentinel and Cluster (a loaded machine)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "topologies: run on standalone, Sentinel and Cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("topologies") and (
        "topology" in metafunc.fixturenames
    ):
        metafunc.parametrize("topology", TOPOLOGIES, indirect=True)


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


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture(scope="session")
def sentinel_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    started = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> str:
    """standalone, sentinel or cluster: the parameter of `topologies` tests."""
    return str(getattr(request, "param", "standalone"))


@pytest.fixture
def topology_url(topology: str, redis_url: str, request: pytest.FixtureRequest) -> str:
    if topology == "sentinel":
        return str(request.getfixturevalue("sentinel_setup").url)
    if topology == "cluster":
        return str(request.getfixturevalue("cluster").url)
    return redis_url


@pytest.fixture
async def redis(topology: str, topology_url: str) -> AsyncIterator[Redis]:
    if topology == "standalone":
        client = Redis.from_url(topology_url)
    else:
        client = redis_client(Settings(redis_url=topology_url, redis_timeout=TOPOLOGY_TIMEOUT))
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
