"""The upstream's pauses are shared by replicas (gateway.tasks.backoff): one replica told to
wait by a 429, or by a 503 with Retry-After, pauses, and the others pause too at their next
refresh."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from gateway.errors import UpstreamPausedError, UpstreamRateLimitedError
from gateway.tasks.backoff import DOWN_PAUSE_MAX, Pause, UpstreamBackoff
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


async def test_a_503_with_retry_after_pauses_creates_on_every_replica(
    redis: Redis, prefix: str
) -> None:
    """GoAPI says it is down for 20 s: the create that heard it fails (502, released), the next
    ones are refused before anything is reserved (503 `upstream_unavailable`, Retry-After)
    instead of each collecting its own 503, another replica learns it at its refresh, and a
    503 without Retry-After (or another 5xx) pauses nothing."""
    async with harness(redis, prefix) as h:
        body = {"code": 503, "data": None, "message": "maintenance"}
        h.faulty.faults = [httpx.Response(503, json=body)]  # no Retry-After: no pause
        assert (await h.create(prompt="a --fast")).status_code == 502
        assert (await h.create(prompt="b --fast")).status_code == 200
        h.faulty.faults = [httpx.Response(503, json=body, headers={"retry-after": "20"})]
        heard = await h.create(prompt="c --fast")
        assert heard.status_code == 502 and heard.json()["error"]["type"] == "upstream_unavailable"
        creates = h.faulty.creates
        paused = await h.create(prompt="d --fast")
        assert paused.status_code == 503, paused.text
        error = paused.json()["error"]
        assert error["type"] == "upstream_unavailable" and 19 <= error["retry_after"] <= 21
        assert paused.headers["retry-after"] == str(error["retry_after"])
        assert h.faulty.creates == creates  # never sent
        accounts = await h.gate.catalog.list_accounts()
        assert sum(a.in_flight for a in accounts) == 1  # b's only: nothing held for c or d
        replica = UpstreamBackoff(h.gate.tasks.sender.backoff.pipe, Keys(prefix))
        await replica.refresh()
        with pytest.raises(UpstreamPausedError):
            replica.check()
        assert 18 <= replica.remaining() <= 20
        assert 0 < await redis.pttl(Keys(prefix).upstream_down()) <= 20000


async def test_a_503s_pause_is_bounded_and_a_later_429_answers_as_itself(
    redis: Redis, keys: Keys
) -> None:
    pipe = Pipe.of(redis)
    backoff = UpstreamBackoff(pipe, keys)
    try:
        await backoff.pause(3600, Pause.DOWN)  # one answer stops every create: at most 5 min
        assert DOWN_PAUSE_MAX - 1 <= backoff.remaining() <= DOWN_PAUSE_MAX
        with pytest.raises(UpstreamPausedError):
            backoff.check()
        await backoff.pause(DOWN_PAUSE_MAX + 60)  # a 429's, ending later: its error
        with pytest.raises(UpstreamRateLimitedError):
            backoff.check()
    finally:
        await pipe.aclose()
