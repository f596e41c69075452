"""Worker processes for the multi-process concurrency test (importable by spawned children)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from routing.errors import PacedUnavailableError
from routing.keys import Keys
from routing.model import Mode
from routing.results import Outcome, Reservation
from routing.store import PoolStore


async def _reserve_many(redis_url: str, prefix: str, worker: int, tasks: int) -> list[int]:
    # redis-py's default pool refuses a 101st concurrent connection; this one waits instead.
    client = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=32))
    store = PoolStore(client, Keys(prefix))
    try:
        results = await asyncio.gather(
            *(
                store.reserve_root(
                    f"w{worker}-{n}",
                    Mode.FAST,
                    60,
                    client_id=f"c{worker}",
                    lease_seconds=60,
                    staged_limit=10_000,
                    staged_timeout=300,
                )
                for n in range(tasks)
            )
        )
        return [r.bot_id for r in results if isinstance(r, Reservation)]
    finally:
        await store.aclose()
        await client.aclose()


async def _reserve_and_settle(redis_url: str, prefix: str, worker: int, tasks: int) -> list[int]:
    """Reserve root tasks concurrently and settle each one reserved at once: its account is
    free again while its gap still runs (gaps are held only when routing meets them)."""
    client = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=32))
    store = PoolStore(client, Keys(prefix))

    async def one(n: int) -> int | None:
        try:
            got = await store.reserve_root(
                f"g{worker}-{n}",
                Mode.FAST,
                60,
                client_id=f"c{worker}",
                lease_seconds=60,
                staged_limit=10_000,
                staged_timeout=3_600,
            )
        except PacedUnavailableError:  # held past the staged timeout: refused, not staged
            return None
        if not isinstance(got, Reservation):
            return None
        await store.settle(got.task_id, Outcome.COMPLETED)
        return got.bot_id

    try:
        return [bot_id for bot_id in await asyncio.gather(*map(one, range(tasks))) if bot_id]
    finally:
        await store.aclose()
        await client.aclose()


_start: Any = None


def prepare(barrier: Any) -> None:
    """Pool initializer: keep the barrier every worker waits at before starting."""
    global _start
    _start = barrier


def reserve_many(args: tuple[str, str, int, int]) -> list[int]:
    """Reserve `tasks` fast tasks concurrently, once every worker is ready; returns the
    bot_ids that took one."""
    if _start is not None:
        _start.wait(timeout=60)
    return asyncio.run(_reserve_many(*args))


def reserve_and_settle(args: tuple[str, str, int, int]) -> list[int]:
    """`_reserve_and_settle` once every worker is ready; returns the bot_ids that took one."""
    if _start is not None:
        _start.wait(timeout=60)
    return asyncio.run(_reserve_and_settle(*args))
