"""Redis memory per account: the hash plus its entries in the pool's sets (docs/routing.md,
'Memory')."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.model import Plan
from routing.store import PoolStore
from tests.routing.helpers import FakeClock

ACCOUNTS = 1000  # enough for every sorted set to leave its compact encoding


async def _usage(redis: Redis, key: str) -> int:
    return int(await redis.memory_usage(key, samples=0) or 0)


async def test_an_account_costs_at_most_one_kib(
    store: PoolStore,
    catalog: Catalog,
    redis: Redis,
    clock: FakeClock,
    record_property: pytest.RecordProperty,
) -> None:
    keys = store.keys
    for n in range(ACCOUNTS):
        spec = AccountSpec(
            bot_id=1_300_000_000 + n,
            name=f"studio-{n:05d}",
            plan=Plan.PRO,
            fast_seconds_left=100_000 + n,
            renews_at=clock() + 86400,
            tags=("studio", "eu-west"),
        )
        await catalog.apply_account(spec)
    hashes = sum([await _usage(redis, keys.account(1_300_000_000 + n)) for n in range(ACCOUNTS)])
    sets = [keys.accounts(), *(keys.index(name) for name in ("fs", "ff", "fb", "rs", "renew"))]
    indexes = sum([await _usage(redis, key) for key in sets])
    per_account = (hashes + indexes) / ACCOUNTS
    record_property("memory_per_account_bytes", per_account)
    print(f"memory per account: {per_account:.0f} B (hash {hashes / ACCOUNTS:.0f} B)")
    assert per_account <= 1024
