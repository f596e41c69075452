"""The service's Redis client on each topology, and what `mjgate check-config` reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from gateway.redisconn import SentinelRedis, describe_topology, print_topology, redis_client
from gateway.settings import Settings
from routing.pipe import Pipe
from routing.resolvers import ClusterSlots, Fixed, SentinelPrimary, key_slot

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def test_the_client_and_the_pipe_follow_the_url(topology: str, topology_url: str) -> None:
    client = redis_client(Settings(redis_url=topology_url, redis_timeout=5.0))
    pipe = Pipe.of(client)
    try:
        expected = {"standalone": Fixed, "sentinel": SentinelPrimary, "cluster": ClusterSlots}
        assert isinstance(pipe.resolver, expected[topology])
        assert isinstance(client, RedisCluster) == (topology == "cluster")
        assert isinstance(client, SentinelRedis) == (topology == "sentinel")
        assert await client.ping()
        assert await pipe.call(b"PING") == b"PONG"
        assert pipe.timeout == 5.0
    finally:
        await pipe.aclose()
        await client.aclose()


async def test_check_config_reports_the_topology_found(topology: str, topology_url: str) -> None:
    text = await describe_topology(Settings(redis_url=topology_url, redis_timeout=5.0))
    assert "Redis 7" in text or "Valkey" in text
    if topology == "cluster":
        assert "3 primaries, 3 replicas" in text and "16384 of 16384 slots" in text
        assert f"the pool's slot {key_slot(b'mjgate:{pool}:meta')} on 127.0.0.1:" in text
    elif topology == "sentinel":
        assert text.startswith("Sentinel service 'mymaster'")
        assert "role master at 127.0.0.1:" in text and "2 replica(s)" in text
    else:
        assert text.startswith("standalone Redis at ") and "role master" in text


async def test_check_config_without_redis_url_and_with_nothing_listening() -> None:
    text = await describe_topology(Settings(data_dir=Path("somewhere")))
    assert text == "embedded Redis in somewhere (started by `mjgate serve`)"
    with pytest.raises(RedisError):
        await describe_topology(
            Settings(redis_url="redis+cluster://127.0.0.1:1", redis_timeout=0.5)
        )


def test_check_config_prints_one_line_and_an_exit_code(
    topology_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert print_topology(Settings(redis_url=topology_url, redis_timeout=5.0)) == 0
    assert capsys.readouterr().out.startswith("redis: ")
    unreachable = Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.5)
    assert print_topology(unreachable) == 1
    assert "cannot reach Redis (standalone Redis at 127.0.0.1:1)" in capsys.readouterr().err
