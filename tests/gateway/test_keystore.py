"""Managed client keys against a real Redis: hashed storage, revocation, policy, rate limits."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.errors import RateLimitedError
from gateway.keys.client import StaticKeys, key_id
from gateway.keys.policy import KeyInfo, KeyPolicy
from gateway.keys.store import KeyStore, retry_after
from routing.errors import StoreError
from routing.keys import Keys
from routing.model import Mode
from routing.pipe import Pipe

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster

STATIC = "static-client-key"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_PIPES: list[Pipe] = []


@pytest.fixture(autouse=True)
async def _close_pipes() -> AsyncIterator[None]:
    yield
    while _PIPES:
        await _PIPES.pop().aclose()


def store(redis: Redis, keys: Keys, clock: Clock | None = None) -> KeyStore:
    """A key store as the app makes one: request path on a pipe, admin on redis-py."""
    pipe = Pipe.of(redis)
    _PIPES.append(pipe)
    return KeyStore(redis, keys, static=StaticKeys((STATIC,)), pipe=pipe, clock=clock or Clock())


async def dump_everything(redis: Redis, prefix: str) -> bytes:
    """Every key and value under the test's prefix, whatever its type."""
    out = b""
    async for name in redis.scan_iter(match=f"{prefix}:*"):
        kind = (await redis.type(name)).decode()
        value: object = {
            "string": redis.get, "hash": redis.hgetall, "set": redis.smembers,
            "list": lambda n: redis.lrange(n, 0, -1),
            "zset": lambda n: redis.zrange(n, 0, -1),
        }[kind](name)  # fmt: skip
        out += name + repr(await value).encode()  # type: ignore[misc]
    return out


async def test_created_key_is_stored_only_hashed(redis: Redis, keys: Keys, prefix: str) -> None:
    keystore = store(redis, keys)
    info, secret = await keystore.create("team-a", KeyPolicy())
    assert info.id == key_id(secret) and info.name == "team-a"
    stored = await dump_everything(redis, prefix)
    assert info.id.encode() in stored  # the key is there...
    assert secret.encode() not in stored  # ...but never its secret
    assert secret.removeprefix("mjg_").encode() not in stored


async def test_lookup_builds_the_client_with_its_policy(redis: Redis, keys: Keys) -> None:
    keystore = store(redis, keys)
    policy = KeyPolicy(allowed_modes=frozenset({Mode.RELAX}), tags=("studio",),
                       staged_limit=5, rate_per_minute=30)  # fmt: skip
    info, secret = await keystore.create("relax-team", policy)
    client = await keystore.lookup(secret)
    assert client is not None
    assert client.id == info.id and client.name == "relax-team"
    assert client.allowed_modes == frozenset({Mode.RELAX})
    assert client.cap_mode(Mode.FAST) is Mode.RELAX
    assert client.tags == ("studio",) and client.staged_limit == 5
    assert client.rate_per_minute == 30
    assert await keystore.lookup(secret + "x") is None
    assert await keystore.lookup("") is None


async def test_static_keys_still_work_and_cannot_be_revoked(redis: Redis, keys: Keys) -> None:
    keystore = store(redis, keys)
    client = await keystore.lookup(STATIC)
    assert client is not None and client.id == key_id(STATIC) and client.name == "static"
    assert await keystore.revoke(key_id(STATIC)) is False
    assert await keystore.lookup(STATIC) is not None


async def test_a_record_whose_digest_differs_is_refused(redis: Redis, keys: Keys) -> None:
    keystore = store(redis, keys)
    info, secret = await keystore.create("x", KeyPolicy())
    await redis.hset(keys.client_key(info.id), "d", "0" * 64)  # same id, another secret
    assert await keystore.lookup(secret) is None


async def test_list_and_revoke(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    keystore = store(redis, keys, clock)
    first, _ = await keystore.create("first", KeyPolicy(rate_per_minute=10))
    clock.now += 1
    second, secret = await keystore.create("second", KeyPolicy(tags=("a", "b")))
    listed = await keystore.list()
    assert [info.id for info in listed] == [first.id, second.id]
    assert listed[0].policy.rate_per_minute == 10 and listed[1].policy.tags == ("a", "b")
    assert listed[1].to_dict()["allowed_modes"] is None
    assert "secret" not in listed[1].to_dict()
    assert await keystore.get(second.id) == second
    assert await keystore.revoke(second.id) is True
    assert await keystore.revoke(second.id) is False
    assert await keystore.lookup(secret) is None
    assert [info.id for info in await keystore.list()] == [first.id]


async def test_revocation_is_effective_at_once_on_every_replica(redis_url: str, keys: Keys) -> None:
    a, b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        replica_a, replica_b = store(a, keys), store(b, keys)
        info, secret = await replica_a.create("shared", KeyPolicy())
        assert await replica_b.lookup(secret) is not None  # b caches nothing...
        assert await replica_a.revoke(info.id)
        assert await replica_b.lookup(secret) is None  # ...so the next request is refused
    finally:
        await a.aclose()
        await b.aclose()


async def test_rate_limit_refuses_beyond_the_limit_with_retry_after(
    redis: Redis, keys: Keys
) -> None:
    clock = Clock(60 * 28_333_333 + 10.0)  # 10 s into a minute
    keystore = store(redis, keys, clock)
    _, secret = await keystore.create("limited", KeyPolicy(rate_per_minute=3))
    client = await keystore.lookup(secret)
    assert client is not None
    for _ in range(3):
        await keystore.check_rate(client)
    with pytest.raises(RateLimitedError) as refused:
        await keystore.check_rate(client)
    assert refused.value.status == 429
    assert refused.value.headers["retry-after"] == "70"
    # refused requests are not counted: the client is let in again when Retry-After says
    clock.now += 69
    with pytest.raises(RateLimitedError):
        await keystore.check_rate(client)
    clock.now += 1
    await keystore.check_rate(client)


async def test_rate_limit_is_shared_by_replicas_and_atomic(redis_url: str, keys: Keys) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        clock = Clock(60 * 28_333_333 + 1.0)
        replicas = [store(c, keys, clock) for c in clients]
        _, secret = await replicas[0].create("burst", KeyPolicy(rate_per_minute=10))
        client = await replicas[0].lookup(secret)
        assert client is not None

        async def attempt(i: int) -> bool:
            try:
                await replicas[i % 4].check_rate(client)
            except RateLimitedError:
                return False
            return True

        results = await asyncio.gather(*(attempt(i) for i in range(40)))
        assert sum(results) == 10  # exactly the limit, whatever replica each request hit
    finally:
        for c in clients:
            await c.aclose()


async def test_no_limit_costs_nothing(redis: Redis, keys: Keys, prefix: str) -> None:
    keystore = store(redis, keys)
    _, secret = await keystore.create("free", KeyPolicy())
    client = await keystore.lookup(secret)
    assert client is not None
    for _ in range(100):
        await keystore.check_rate(client)
    static = await keystore.lookup(STATIC)
    assert static is not None
    await keystore.check_rate(static)
    assert [k async for k in redis.scan_iter(match=f"{prefix}:*rate*")] == []


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (0, 3, 10.0, 70),  # all in this minute: 50 s to the next, then 20 s for it to fade
        (6, 0, 30.0, 10),  # the previous minute weighs 3 now, 2 at 40 s
        (6, 2, 0.0, 60),  # room for one only once the previous minute weighs nothing
        (0, 0, 0.0, 1),
    ],
)
def test_retry_after(previous: int, current: int, elapsed: float, expected: int) -> None:
    assert retry_after(3, previous, current, elapsed) == expected


async def test_redis_down_is_a_store_error(keys: Keys) -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        keystore = store(dead, keys)
        with pytest.raises(StoreError) as failed:
            await keystore.lookup("some-managed-key")
        assert failed.value.op == "key_lookup"
        assert await keystore.lookup(STATIC) is not None  # static keys need no Redis
    finally:
        await dead.aclose()


async def test_update_changes_name_and_policy_on_every_store_at_once(
    redis: Redis, keys: Keys
) -> None:
    clock = Clock()
    here, there = store(redis, keys, clock), store(redis, keys, clock)  # two replicas
    info, secret = await here.create("team", KeyPolicy(rate_per_minute=10))
    changed = await here.update(
        info.id, lambda stored: dataclasses.replace(
            stored, id="ignored", name="team-b", created_at=0.0,
            policy=dataclasses.replace(stored.policy, tags=("studio",))))  # fmt: skip
    assert changed == dataclasses.replace(
        info, name="team-b", policy=KeyPolicy(rate_per_minute=10, tags=("studio",))
    )  # the id and creation time are the stored ones
    assert await there.get(info.id) == changed
    client = await there.lookup(secret)  # the same secret, the new policy
    assert client is not None and client.name == "team-b" and client.tags == ("studio",)


async def test_update_of_an_unknown_or_revoked_key_writes_nothing(
    redis: Redis, keys: Keys, prefix: str
) -> None:
    keystore = store(redis, keys)
    assert await keystore.update("0123456789abcdef", lambda stored: stored) is None
    info, _ = await keystore.create("gone", KeyPolicy())
    await keystore.revoke(info.id)
    assert await keystore.update(info.id, lambda stored: stored) is None
    assert await dump_everything(redis, prefix) == b""


async def test_concurrent_updates_are_none_lost(redis: Redis, keys: Keys) -> None:
    keystore = store(redis, keys)
    info, _ = await keystore.create("team", KeyPolicy(staged_limit=1))

    def one_more(stored: KeyInfo) -> KeyInfo:
        limit = (stored.policy.staged_limit or 0) + 1
        return dataclasses.replace(
            stored, policy=dataclasses.replace(stored.policy, staged_limit=limit)
        )

    await asyncio.gather(*(keystore.update(info.id, one_more) for _ in range(20)))
    stored = await keystore.get(info.id)
    assert stored is not None and stored.policy.staged_limit == 21
