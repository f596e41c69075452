"""Many replicas at once: exactly the free slots are reserved, the rest is staged, nobody is
over its slots, fast time never goes below zero (docs/routing.md, 'Decisions')."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.keys import Keys
from routing.model import Mode, Plan
from routing.pacing import Pacing
from routing.results import Reservation
from routing.store import PoolStore
from tests.routing.workers import prepare, reserve_and_settle, reserve_many

# bot_id: (fast slots, fast seconds): account 4 has fast time for two tasks only.
POOL = {1: (3, 100_000), 2: (2, 100_000), 3: (4, 100_000), 4: (3, 120)}
CAPACITY = {1: 3, 2: 2, 3: 4, 4: 2}


async def _make_pool(store: PoolStore) -> None:
    for bot_id, (slots, seconds) in POOL.items():
        await Catalog(store).apply_account(
            AccountSpec(
                bot_id=bot_id,
                plan=Plan.STANDARD,
                fast_slots=slots,
                relax_slots=0,
                fast_seconds_left=seconds,
            )
        )


async def _check_pool(store: PoolStore, taken: Counter[int]) -> None:
    assert taken == CAPACITY
    for account in await Catalog(store).list_accounts():
        assert account.fast_in_flight == CAPACITY[account.bot_id] <= account.fast_slots
        assert account.fast_seconds_left >= 0
        assert account.fast_seconds_reserved == 60 * CAPACITY[account.bot_id]


async def test_concurrent_reserves_from_many_connections(redis_url: str, keys: Keys) -> None:
    clients = [Redis.from_url(redis_url) for _ in range(8)]
    stores = [PoolStore(client, keys) for client in clients]
    try:
        await _make_pool(stores[0])
        results = await asyncio.gather(
            *(
                stores[n % len(stores)].reserve_root(
                    f"t{n}",
                    Mode.FAST,
                    60,
                    client_id="c",
                    lease_seconds=60,
                    staged_limit=10_000,
                    staged_timeout=300,
                )
                for n in range(400)
            )
        )
        taken = Counter(r.bot_id for r in results if isinstance(r, Reservation))
        await _check_pool(stores[0], taken)
        assert await stores[0].staged_count() == 400 - sum(CAPACITY.values())
    finally:
        for store in stores:
            await store.aclose()
        for client in clients:
            await client.aclose()


async def _in_processes(
    work: Callable[[tuple[str, str, int, int]], list[int]], redis_url: str, keys: Keys, tasks: int
) -> Counter[int]:
    """`work` in 3 processes at once (`tasks` each, started together): the bot_ids taken."""
    context = multiprocessing.get_context("spawn")
    jobs = [(redis_url, keys.prefix, worker, tasks) for worker in range(3)]
    loop = asyncio.get_running_loop()
    ready = context.Barrier(len(jobs))
    with context.Pool(len(jobs), initializer=prepare, initargs=(ready,)) as pool:
        pending = pool.map_async(work, jobs)
        outcome = await loop.run_in_executor(None, pending.get, 120)
    return Counter(bot_id for bot_ids in outcome for bot_id in bot_ids)


@pytest.mark.slow
async def test_concurrent_reserves_from_several_processes(
    redis_url: str, keys: Keys, store: PoolStore
) -> None:
    await _make_pool(store)
    taken = await _in_processes(reserve_many, redis_url, keys, 150)
    await _check_pool(store, taken)
    assert await store.staged_count() == 450 - sum(CAPACITY.values())


@pytest.mark.slow
async def test_gaps_hold_across_processes(redis_url: str, keys: Keys, store: PoolStore) -> None:
    """Three processes reserve and at once settle 100 root tasks each on 10 accounts with a
    10-minute gap: each account takes exactly one (free again at once, but inside its gap, which
    nothing held before routing met it), the rest wait staged."""
    for bot_id in range(1, 11):
        spec = AccountSpec(bot_id=bot_id, plan=Plan.PRO, fast_slots=3, fast_seconds_left=100_000,
                           pacing=Pacing(min_gap_seconds=600))  # fmt: skip
        await Catalog(store).apply_account(spec)
    taken = await _in_processes(reserve_and_settle, redis_url, keys, 100)
    assert taken == {bot_id: 1 for bot_id in range(1, 11)}
    assert await store.staged_count() == 300 - 10


def _noon_zone() -> str:
    """An `Etc/GMT` zone (sign reversed) where it is about noon now: local midnight, when the
    caps reset, is hours away from a test that lasts seconds."""
    offset = 12 - time.gmtime().tm_hour  # -11 .. +12 hours from UTC
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@pytest.mark.slow
async def test_caps_hold_across_processes(redis_url: str, keys: Keys, store: PoolStore) -> None:
    """Three processes reserve and at once settle 100 root tasks each on 10 accounts capped at
    3 fast jobs a day: each account takes exactly 3, whatever the interleaving; the rest are
    staged or, held past the staged timeout (midnight is hours away), refused."""
    for bot_id in range(1, 11):
        profile = Pacing(timezone=_noon_zone(), fast_cap=3)
        spec = AccountSpec(bot_id=bot_id, plan=Plan.PRO, fast_slots=3, fast_seconds_left=100_000,
                           pacing=profile)  # fmt: skip
        await Catalog(store).apply_account(spec)
    taken = await _in_processes(reserve_and_settle, redis_url, keys, 100)
    assert taken == {bot_id: 3 for bot_id in range(1, 11)}
    for account in await Catalog(store).list_accounts():
        assert account.pace is not None and account.pace.fast_today == 3
        assert account.fast_in_flight == 0
