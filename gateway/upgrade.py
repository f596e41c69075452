"""Upgrading the key layout: keys an earlier mjgate wrote move to today's layout, at start.

Before Redis Sentinel and Cluster support, every key lived under the pool's hash tag
(`<prefix>:{pool}:`). Today only the pool's own keys do (routing.keys); the rest moved to
their own hash tags so a cluster spreads them. An upgrade must lose none of them (managed
keys' secrets were shown once; task records answer clients' GETs and hold webhooks), so
`upgrade_layout` moves what an earlier version left:

    {pool}:task:<id>             ->  {t:<id>}:task            task records
    {pool}:up:<upstream id>      ->  {u:<upstream id>}:up     upstream id -> mjgate id
    {pool}:idem:<client>:<key>   ->  {i:<client>:<key>}:idem  Idempotency-Keys
    {pool}:ckey:<id>             ->  {ckeys}:key:<id>         managed client keys
    {pool}:ckeys                 ->  {ckeys}:index            their index
    {pool}:outbox                ->  {outbox}:due             webhook deliveries due
    {pool}:outbox:attempts       ->  {outbox}:attempts        and their attempts

(rate counters live one minute: the old ones are dropped). Each key moves with DUMP and
RESTORE keeping its time to live, then DEL: that works between cluster slots too. A key
already present under its new name (written meanwhile by an upgraded replica) wins; the old
copy is dropped. When every key has moved, the pool's meta hash gets `layout` = 2 and later
starts skip the scan; replicas starting together make the same idempotent moves.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway import logs
from routing.keys import Keys

LAYOUT_FIELD = "layout"
LAYOUT = b"2"
SCAN_COUNT = 1_000


DROP = ""  # `new_name`'s answer for a key that is dropped


def new_name(keys: Keys, old: str) -> str | None:
    """Today's name of an earlier version's key `old`: None for a key that stays (the pool's
    own), DROP for one that is deleted (rate counters: they live one minute)."""
    rest = old.removeprefix(keys.base)
    if rest == old:
        return None
    kind, _, tail = rest.partition(":")
    if kind == "task" and tail:
        return keys.task(tail)
    if kind == "up" and tail:
        return keys.upstream_task(tail)
    if kind == "idem" and ":" in tail:
        client, _, key = tail.partition(":")
        return keys.idempotency(client, key)
    if kind == "ckey" and tail:
        return keys.client_key(tail)
    if kind == "rate" and tail:
        return DROP
    return {
        "ckeys": keys.client_keys(),
        "outbox": keys.outbox(),
        "outbox:attempts": keys.outbox_attempts(),
    }.get(rest)


async def _move(redis: Redis, old: str, new: str) -> bool:
    """Move one key; False when it vanished meanwhile (expired, or moved by another replica)."""
    dumped = await redis.dump(old)
    ttl = int(await redis.pttl(old))
    if dumped is None or ttl == -2:
        return False
    try:
        await redis.restore(new, max(ttl, 0), dumped)
    except ResponseError as exc:
        if "BUSYKEY" not in str(exc):
            raise
    await redis.delete(old)
    return True


async def upgrade_layout(redis: Redis, keys: Keys) -> int:
    """Move every key an earlier version left to today's layout (once per store); how many
    moved. Redis errors propagate (the caller's start-up retries)."""
    meta = keys.pool_meta()
    if await redis.hget(meta, LAYOUT_FIELD) == LAYOUT:
        return 0
    moved = dropped = 0
    async for raw in redis.scan_iter(match=keys.base + "*", count=SCAN_COUNT):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        new = new_name(keys, old)
        if new == DROP:
            dropped += int(await redis.delete(old))
        elif new is not None and await _move(redis, old, new):
            moved += 1
    await redis.hset(meta, LAYOUT_FIELD, LAYOUT)
    if moved or dropped:
        logs.event("key_layout_upgraded", moved=moved, dropped=dropped)
    return moved
