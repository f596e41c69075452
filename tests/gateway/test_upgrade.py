"""Keys an earlier mjgate wrote under the pool's hash tag move to today's layout at start:
an upgrade loses no managed key, task record, Idempotency-Key or webhook delivery."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.upgrade import DROP, LAYOUT_FIELD, new_name, upgrade_layout
from routing.keys import Keys
from tests.gateway.test_admin import call, data
from tests.harness import harness


def old_name(keys: Keys, new: str) -> str:
    """The name an earlier version gave the key today called `new`."""
    rest = new.removeprefix(f"{keys.prefix}:")
    tag, _, suffix = rest.partition("}:")
    kind, _, ident = tag.removeprefix("{").partition(":")
    if suffix == "task":
        return f"{keys.base}task:{ident}"
    if suffix == "up":
        return f"{keys.base}up:{ident}"
    if suffix == "idem":
        return f"{keys.base}idem:{ident}"
    if kind == "ckeys":
        return f"{keys.base}ckeys" if suffix == "index" else f"{keys.base}ckey:{suffix[4:]}"
    if kind == "outbox":
        return f"{keys.base}outbox" if suffix == "due" else f"{keys.base}outbox:attempts"
    raise AssertionError(new)


def test_every_earlier_name_maps_to_todays() -> None:
    keys = Keys("p")
    for new in (
        keys.task("T1"),
        keys.upstream_task("u-1"),
        keys.idempotency("c0ffee", "my:key"),
        keys.client_key("abc"),
        keys.client_keys(),
        keys.outbox(),
        keys.outbox_attempts(),
    ):
        assert new_name(keys, old_name(keys, new)) == new
    assert new_name(keys, f"{keys.base}rate:abc:123") == DROP
    for stays in (keys.account(1), keys.pool_meta(), keys.staged_queue(), "p:{t:x}:task"):
        assert new_name(keys, stays) is None


async def _downgrade(redis: Redis, keys: Keys) -> int:
    """Rename today's keys (except the pool's) to an earlier version's names; how many."""
    renamed = 0
    async for raw in redis.scan_iter(match=f"{keys.prefix}:*"):
        name = raw.decode()
        if name.startswith(keys.base) or any(
            t in name for t in (":{o:", ":{r:", ":{sweep}:", ":{backoff}:")
        ):
            continue
        await redis.rename(name, old_name(keys, name))
        renamed += 1
    await redis.hdel(keys.pool_meta(), LAYOUT_FIELD)
    return renamed


async def test_an_upgrade_keeps_keys_records_and_idempotency(redis: Redis, prefix: str) -> None:
    keys = Keys(prefix)
    async with harness(redis, prefix) as h:
        secret = data(await call(h, "POST", "/keys", body={"name": "team"}), 201)["secret"]
        first = await h.create(prompt="x", key=secret, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 200, first.text
        task_id = first.json()["data"]["task_id"]
    assert await _downgrade(redis, keys) >= 4  # record, upstream map, idempotency, key, index
    ttl_before = await redis.pttl(old_name(keys, keys.task(task_id)))
    async with harness(redis, prefix) as h:  # starts on the earlier layout
        got = await h.client.get(f"/api/v1/task/{task_id}", headers={"x-api-key": secret})
        assert got.status_code == 200, got.text
        assert got.json()["data"]["task_id"] == task_id
        again = await h.create(prompt="x", key=secret, headers={"Idempotency-Key": "k1"})
        assert again.json()["data"]["task_id"] == task_id  # the replay, not a second task
    assert 0 < await redis.pttl(keys.task(task_id)) <= ttl_before  # its time to live kept
    assert [k async for k in redis.scan_iter(match=f"{keys.base}task:*")] == []


async def test_a_key_already_written_under_its_new_name_wins(redis: Redis, prefix: str) -> None:
    keys = Keys(prefix)
    await redis.set(f"{keys.base}task:T", "old")
    await redis.set(keys.task("T"), "new")
    await redis.set(f"{keys.base}rate:abc:1", "3")
    assert await upgrade_layout(redis, keys) == 1
    assert await redis.get(keys.task("T")) == b"new"
    assert not await redis.exists(f"{keys.base}task:T", f"{keys.base}rate:abc:1")
    await redis.set(f"{keys.base}task:U", "left")  # written after the upgrade: not scanned
    assert await upgrade_layout(redis, keys) == 0
