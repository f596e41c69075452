"""Quotas per client key, checked and counted inside the reserve scripts: jobs and fast seconds
per calendar day and month (in the key's timezone), tasks in flight, soft thresholds."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from routing.catalog import Catalog
from routing.errors import QuotaExceededError
from routing.keys import Keys
from routing.model import Mode, Plan
from routing.quotas import Quota, periods
from routing.results import Outcome, Reservation, Staged
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, reserved, root, staged


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_periods_follow_the_keys_calendar() -> None:
    now = at("2026-12-31T23:30:00", "America/New_York")  # already 2027 in UTC
    p = periods(now, "America/New_York")
    assert (p.day, p.month) == ("20261231", "202612")
    assert p.day_reset == p.month_reset == at("2027-01-01T00:00:00", "America/New_York")
    assert periods(now).day == "20270101"


async def test_jobs_per_day_refused_beyond_the_limit_until_midnight(
    store: PoolStore, catalog: Catalog, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    clock.now = at("2026-03-10T23:59:00", "Europe/Paris")
    quota = Quota(jobs_per_day=3, timezone="Europe/Paris")
    lefts = [reserved(await root(store, f"t{n}", quota=quota)).quota for n in range(3)]
    assert lefts == [(("jobs_day", 2),), (("jobs_day", 1),), (("jobs_day", 0),)]
    with pytest.raises(QuotaExceededError) as refused:
        await root(store, "t3", quota=quota)
    assert (refused.value.quota, refused.value.retry_after) == ("jobs_day", 60)
    assert await catalog.get_account(1) is not None
    assert (await catalog.get_account(1)).fast_in_flight == 3  # type: ignore[union-attr]
    clock.advance(60)  # local midnight: a new day, a new count
    assert reserved(await root(store, "t4", quota=quota)).quota == (("jobs_day", 2),)


async def test_month_quota_resets_on_the_first(store: PoolStore, clock: FakeClock) -> None:
    await add(store, 1, Plan.PRO)
    clock.now = at("2026-02-28T23:00:00")
    quota = Quota(jobs_per_month=1)
    reserved(await root(store, "t0", quota=quota))
    with pytest.raises(QuotaExceededError) as refused:
        await root(store, "t1", quota=quota)
    assert (refused.value.quota, refused.value.retry_after) == ("jobs_month", 3600)
    clock.advance(3600)
    reserved(await root(store, "t1", quota=quota))


async def test_fast_seconds_are_counted_as_reserved_and_refunded_on_failure(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.PRO)
    quota = Quota(fast_seconds_per_day=120, jobs_per_month=100)
    first = reserved(await root(store, "f1", cost=60, quota=quota))
    assert dict(first.quota) == {"jobs_month": 99, "fast_seconds_day": 60}
    reserved(await root(store, "f2", cost=60, quota=quota))
    with pytest.raises(QuotaExceededError) as refused:
        await root(store, "f3", cost=60, quota=quota)
    assert refused.value.quota == "fast_seconds_day"
    relax = reserved(await root(store, "r1", Mode.RELAX, 0, quota=quota))  # relax costs none
    assert dict(relax.quota)["fast_seconds_day"] == 0
    await store.settle("f1", Outcome.FAILED)  # refunded: the budget is back
    await store.settle("f2", Outcome.COMPLETED)  # kept
    again = reserved(await root(store, "f3", cost=60, quota=quota))
    assert dict(again.quota) == {"jobs_month": 97, "fast_seconds_day": 0}
    await store.settle("f3", Outcome.CANCELLED)
    assert dict(reserved(await root(store, "f4", cost=30, quota=quota)).quota) == {
        "jobs_month": 97,
        "fast_seconds_day": 30,
    }


async def test_a_task_the_upstream_ran_relax_gives_its_fast_seconds_back(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.PRO)
    quota = Quota(fast_seconds_per_day=120)
    reserved(await root(store, "f1", cost=60, quota=quota))
    reserved(await root(store, "f2", cost=60, quota=quota))
    assert await store.run_relax("f1") is True  # ran relax upstream: no fast second spent
    assert await store.run_relax("f1") is False  # once
    await store.settle("f1", Outcome.COMPLETED)  # completed relax: nothing to keep
    left = reserved(await root(store, "r1", Mode.RELAX, 0, quota=quota)).quota
    assert dict(left)["fast_seconds_day"] == 60  # f2's 60 only


async def test_a_staged_task_is_charged_and_refunded_when_cancelled_or_expired(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1)
    quota = Quota(jobs_per_day=3)
    reserved(await root(store, "t0", quota=quota))
    assert staged(await root(store, "s1", quota=quota)).quota == (("jobs_day", 1),)
    assert staged(await root(store, "s2", quota=quota)).quota == (("jobs_day", 0),)
    with pytest.raises(QuotaExceededError):
        await root(store, "s3", quota=quota)
    assert await store.cancel_staged("s1")
    clock.advance(301)  # s2 times out
    assert (await store.tick()).expired_staged == ("s2",)
    assert [staged(await root(store, f"s{n}", quota=quota)).quota for n in (4, 5)] == [
        (("jobs_day", 1),),
        (("jobs_day", 0),),
    ]


async def test_a_staged_fast_task_that_runs_relax_gives_back_its_fast_seconds(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.STANDARD, fast_slots=1, relax_slots=1, fast_seconds_left=1000)
    quota = Quota(fast_seconds_per_month=100)
    reserved(await root(store, "t0", cost=60, quota=quota))
    staged(await root(store, "s1", cost=30, quota=quota))  # charged 30, waits for the slot
    await store.set_fast_time(1, 60)  # Midjourney: 60 s left in all, t0's: none for s1
    settlement = await store.settle("t0", Outcome.COMPLETED, dispatch=1)
    assert settlement is not None
    [run] = settlement.dispatched
    assert isinstance(run, Reservation) and (run.mode, run.cost) == (Mode.RELAX, 0)
    left = staged(await root(store, "r1", Mode.RELAX, 0, quota=quota)).quota  # s1 has the slot
    assert left == (("fast_seconds_month", 40),)  # t0's 60 kept, s1's 30 given back


async def test_tasks_in_flight_beyond_the_limit_are_staged_and_go_first_when_one_ends(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.PRO)  # 12 fast slots: the limit is the key's, not the pool's
    quota = Quota(max_in_flight=2)
    reserved(await root(store, "t1", quota=quota))
    reserved(await root(store, "t2", quota=quota))
    assert staged(await root(store, "t3", quota=quota)).reason == "key_in_flight_limit"
    reserved(await root(store, "o1", client_id="other"))  # another key isn't limited
    assert await store.dispatch_staged(4, 60) == []
    settlement = await store.settle("t1", Outcome.COMPLETED, dispatch=4)
    assert settlement is not None
    assert [r.task_id for r in settlement.dispatched] == ["t3"]
    assert staged(await root(store, "t4", quota=quota)).reason == "key_in_flight_limit"


async def test_soft_thresholds_are_raised_once_per_period(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_slots=20)
    quota = Quota(jobs_per_day=10)
    alerts = [reserved(await root(store, f"t{n}", quota=quota)).alerts for n in range(10)]
    assert [(n, a) for n, a in enumerate(alerts) if a] == [
        (7, (("jobs_day", 80),)),
        (9, (("jobs_day", 95),)),
    ]
    await store.settle("t9", Outcome.FAILED)
    await store.settle("t8", Outcome.FAILED)
    await store.settle("t7", Outcome.FAILED)
    again = [reserved(await root(store, f"u{n}", quota=quota)).alerts for n in range(3)]
    assert again == [(), (), ()]


async def test_no_overspend_under_concurrency(redis_url: str, keys: Keys) -> None:
    """200 creates at once from 8 connections against a quota of 50 jobs: exactly 50."""
    clients = [Redis.from_url(redis_url) for _ in range(8)]
    stores = [PoolStore(client, keys) for client in clients]
    try:
        await add(stores[0], 1, Plan.MEGA, fast_slots=1000)
        quota = Quota(jobs_per_day=50, fast_seconds_per_day=10**6)

        async def one(n: int) -> bool:
            try:
                await root(stores[n % 8], f"t{n}", quota=quota)
            except QuotaExceededError:
                return False
            return True

        accepted = await asyncio.gather(*(one(n) for n in range(200)))
        assert sum(accepted) == 50
        account = await Catalog(stores[0]).get_account(1)
        assert account is not None and account.fast_in_flight == 50
    finally:
        for store in stores:
            await store.aclose()
        for client in clients:
            await client.aclose()


async def test_no_quota_costs_nothing_extra(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO)
    got = reserved(await root(store, "t0"))
    assert (got.quota, got.alerts) == ((), ())
    assert isinstance(await root(store, "t0", quota=Quota(jobs_per_day=0)), Reservation)
    with pytest.raises(QuotaExceededError):
        await root(store, "t1", quota=Quota(jobs_per_day=0))
    assert not isinstance(await root(store, "t2"), Staged)
