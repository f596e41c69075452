"""The cost of one /metrics scrape: pool snapshot from Redis, exposition rendered.

For pools of 10, 1,000 and 100,000 accounts, with and without per-account series: the
median time of `store.pool_snapshot` + `Metrics.set_pool` + `Metrics.render` (what the
/metrics handler does), the Redis round trips it makes (counted on the connection: a pipeline
is one), and the exposition's size.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from redis.asyncio import Connection, ConnectionPool, Redis

from bench.pools import load_accounts, new_pool
from bench.report import Report, Row
from gateway.metrics import Metrics
from routing.catalog import Catalog

REPEATS = 5


class CountingConnection(Connection):
    """Counts what is sent: one call per command, or per pipeline (one round trip)."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


async def scrape_part(redis_url: str, rep: Report, sizes: tuple[int, ...]) -> None:
    pool = ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    redis = Redis.from_pool(pool)
    try:
        for size in sizes:
            async with new_pool(redis, "scrape") as store:
                await load_accounts(store, size)
                for per_account in (False, True):
                    metrics = Metrics(per_account=per_account)
                    seconds: list[float] = []
                    trips: list[int] = []
                    body = b""
                    for _ in range(REPEATS):
                        before = CountingConnection.sent
                        started = time.perf_counter()
                        metrics.set_pool(
                            await Catalog(store).pool_snapshot(per_account=per_account)
                        )
                        body, _ = metrics.render()
                        seconds.append(time.perf_counter() - started)
                        trips.append(CountingConnection.sent - before)
                    label = "per-account on" if per_account else "per-account off"
                    rep.add(
                        Row(
                            "scrape",
                            f"scrape, {size:,} accounts, {label}",
                            statistics.median(seconds) * 1000,
                            None,
                            statistics.median(seconds) * 1000,
                            "ms",
                            note=f"{max(trips)} Redis round trips, {len(body):,} bytes",
                        )
                    )
                    rep.details.setdefault("scrape", []).append(
                        {
                            "accounts": size,
                            "per_account": per_account,
                            "ms": round(statistics.median(seconds) * 1000, 3),
                            "round_trips": max(trips),
                            "bytes": len(body),
                        }
                    )
    finally:
        await redis.aclose()
