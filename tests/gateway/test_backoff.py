"""The upstream's rate limit is shared by replicas (gateway.tasks.backoff): one replica told
to wait by a 429 pauses, and the others pause too at their next refresh."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from gateway.errors import UpstreamRateLimitedError
from gateway.tasks.backoff import UpstreamBackoff
from routing.keys import Keys
from routing.pipe import Pipe
from tests.harness import harness


async def test_a_pause_reaches_the_other_replicas_at_their_refresh(
    redis: Redis, keys: Keys
) -> None:
    pipe = Pipe.of(redis)
    told, other = UpstreamBackoff(pipe, keys), UpstreamBackoff(pipe, keys)
    try:
        other.check()  # nothing yet
        await told.pause(5)
        with pytest.raises(UpstreamRateLimitedError):
            told.check()
        other.check()  # not before its refresh
        await other.refresh()
        with pytest.raises(UpstreamRateLimitedError) as refused:
            other.check()
        assert 4 <= refused.value.details["retry_after"] <= 6
        assert 0 < await redis.pttl(keys.upstream_backoff()) <= 5000  # gone with the pause
        await redis.delete(keys.upstream_backoff())
        await other.refresh()  # a refresh never shortens a pause
        assert other.remaining() > 4
    finally:
        await pipe.aclose()


async def test_a_429_on_one_replica_pauses_the_next_create_on_another(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        h.faulty.faults = [
            httpx.Response(
                429, json={"code": 429, "message": "too many"}, headers={"retry-after": "7"}
            )
        ]
        assert (await h.create(prompt="x --fast")).status_code == 429
        sender = h.gate.tasks.sender
        replica = UpstreamBackoff(sender.backoff.pipe, Keys(prefix))  # another process's
        await replica.refresh()
        assert 6 <= replica.remaining() <= 7
        await h.gate.tasks.loops.upkeep()  # the loop that refreshes it on every replica
        assert sender.backoff.remaining() > 6
