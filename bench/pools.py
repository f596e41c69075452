"""Pools the Redis parts build: accounts loaded fast, under a prefix deleted afterwards.

Loading: `Catalog.apply_account` with many calls in flight over one connection pool (the
store has no bulk path; concurrent calls pipeline on the wire just as well), ~10,000
accounts a second here, so 100,000 accounts load in about ten seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import TypeVar

from redis.asyncio import Redis

from bench.lab import new_prefix
from routing.accounts import MAX_SLOTS, AccountSpec
from routing.catalog import Catalog
from routing.keys import Keys
from routing.model import Plan
from routing.pacing import Pacing
from routing.store import PoolStore

T = TypeVar("T")
PLANS = (Plan.BASIC, Plan.STANDARD, Plan.PRO, Plan.MEGA)
CONCURRENCY = 32  # store calls in flight


def bench_account(bot_id: int) -> AccountSpec:
    """A varied, always eligible account: every plan in turn, fast time spread out, enough
    slots that a few thousand reservations never stage even on 10 accounts."""
    plan = PLANS[bot_id % len(PLANS)]
    return AccountSpec(
        bot_id=bot_id,
        name=f"bench-{bot_id}",
        plan=plan,
        fast_seconds_left=(10 + bot_id % 50) * 3600 * 1000,
        fast_slots=MAX_SLOTS,
        relax_slots=0 if plan is Plan.BASIC else MAX_SLOTS,
    )


def task_id(name: str) -> str:
    """A task id shaped as mjgate's (a version 4 UUID: pacing's gap jitter reads its last 8
    hex digits, and hashes any other id), made from `name` so that a run is repeatable."""
    digest = hashlib.blake2b(name.encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


async def gather_limited(
    calls: Sequence[Callable[[], Awaitable[T]]], concurrency: int = CONCURRENCY
) -> list[T]:
    """Await every call, at most `concurrency` at once; results in order."""
    results: dict[int, T] = {}
    cursor = iter(range(len(calls)))

    async def worker() -> None:
        for index in cursor:
            results[index] = await calls[index]()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [results[index] for index in range(len(calls))]


async def load_accounts(store: PoolStore, count: int, pacing: Pacing | None = None) -> float:
    """Apply accounts 1..`count` (each with `pacing`); returns the seconds it took."""
    started = time.perf_counter()
    catalog = Catalog(store)
    await gather_limited(
        [
            partial(catalog.apply_account, replace(bench_account(bot_id), pacing=pacing))
            for bot_id in range(1, count + 1)
        ]
    )
    return time.perf_counter() - started


async def delete_prefix(redis: Redis, prefix: str) -> None:
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=10_000):
        batch.append(key)
        if len(batch) >= 5_000:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


@asynccontextmanager
async def new_pool(
    redis: Redis, kind: str, clock: Callable[[], float] | None = None
) -> AsyncIterator[PoolStore]:
    """An empty pool under a fresh prefix, deleted when the block ends."""
    prefix = new_prefix(kind)
    store = PoolStore(redis, Keys(prefix), clock=clock or time.time)
    try:
        await store.load_scripts()
        yield store
    finally:
        await store.aclose()
        await delete_prefix(redis, prefix)
