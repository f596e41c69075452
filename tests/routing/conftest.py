"""Fixtures for the pool store's tests: a store on the real Redis under the test's prefix,
driven by a clock the test moves; a pipe to the test's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from routing.catalog import Catalog
from routing.keys import Keys
from routing.pipe import Pipe
from routing.store import PoolStore
from tests.routing.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(redis: Redis, keys: Keys, clock: FakeClock) -> AsyncIterator[PoolStore]:
    pool = PoolStore(redis, keys, clock=clock)
    await pool.load_scripts()
    yield pool
    await pool.aclose()


@pytest.fixture
def catalog(store: PoolStore) -> Catalog:
    return Catalog(store)


@pytest.fixture
async def pipe(redis: Redis) -> AsyncIterator[Pipe]:
    pipe = Pipe.of(redis)
    yield pipe
    await pipe.aclose()
