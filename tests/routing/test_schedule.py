"""The completion-check schedule: claims are exclusive, the GET budget holds, news only moves
checks later, settle takes a task out, durations are learnt."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from routing.durations import (
    MIN_SAMPLES,
    CheckPlan,
    bracket,
    check_plan,
    typical_seconds,
)
from routing.results import Outcome, Reservation
from routing.schedule import CheckSchedule
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, root

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


def schedule_of(store: PoolStore, clock: FakeClock, *, rate: float = 0.0) -> CheckSchedule:
    return CheckSchedule(
        store.pipe, store.keys, interval=2.0, claim_seconds=30.0, gets_per_second=rate, clock=clock
    )


@pytest.fixture
async def sent(store: PoolStore, clock: FakeClock) -> AsyncIterator[list[str]]:
    """Ten reserved tasks, scheduled for a check at now + 3 s."""
    await add(store, 1, fast_slots=12)
    schedule = schedule_of(store, clock)
    ids = [f"task-{n}" for n in range(10)]
    for task_id in ids:
        assert isinstance(await root(store, task_id), Reservation)
        await schedule.add(task_id, clock() + 3)
    yield ids


async def test_nothing_is_due_before_its_time_then_each_task_goes_to_one_claimer(
    store: PoolStore, clock: FakeClock, sent: list[str]
) -> None:
    schedule = schedule_of(store, clock)
    assert await schedule.claim(100) == []
    clock.advance(3.5)
    claimers = [schedule_of(store, clock) for _ in range(8)]
    claims = await asyncio.gather(*(c.claim(3) for c in claimers))
    got = Counter(due.task_id for claim in claims for due in claim)
    assert set(got) == set(sent) and max(got.values()) == 1  # every task once, to one claimer
    assert all(abs(due.late - 0.5) < 1e-6 for claim in claims for due in claim)
    assert await schedule.claim(100) == []  # claimed: hidden for the claim time
    clock.advance(30.5)  # a claimer that died: its tasks come back
    assert {due.task_id for due in await schedule.claim(100)} == set(sent)


async def test_news_moves_the_check_later_never_earlier_and_never_readds(
    store: PoolStore, clock: FakeClock, sent: list[str]
) -> None:
    schedule = schedule_of(store, clock)
    first, second = sent[0], sent[1]
    await schedule.later(first, clock() + 20)  # a webhook: later
    await schedule.later(first, clock() + 1)  # older news can't bring it back
    clock.advance(3.5)
    assert first not in {due.task_id for due in await schedule.claim(100)}
    await store.settle(second, Outcome.COMPLETED)  # settled: leaves the schedule
    await schedule.later(second, clock() + 5)
    await schedule.again(second)
    assert (await schedule.counts())[0] == 9


async def test_a_settled_task_is_never_claimed(
    store: PoolStore, clock: FakeClock, sent: list[str]
) -> None:
    schedule = schedule_of(store, clock)
    for task_id in sent[:5]:
        await store.settle(task_id, Outcome.FAILED)
    clock.advance(4)
    assert {due.task_id for due in await schedule.claim(100)} == set(sent[5:])


async def test_a_client_poll_refreshes_only_when_due_and_holds_the_claim(
    store: PoolStore, clock: FakeClock, sent: list[str]
) -> None:
    schedule = schedule_of(store, clock)
    assert not await schedule.take(sent[0])  # not due yet: serve the record
    clock.advance(3)
    assert await schedule.take(sent[0])
    assert not await schedule.take(sent[0])  # a second poll (or replica) does not GET too
    assert sent[0] not in {due.task_id for due in await schedule.claim(100)}
    assert not await schedule.take("never-sent")


async def test_the_get_budget_holds_under_a_thousand_in_flight_tasks(
    store: PoolStore, clock: FakeClock
) -> None:
    """1,000 tasks all due at once, five replicas claiming as fast as they can, clients
    polling too: never more GETs in any second than the budget (plus one second's burst)."""
    await add(store, 1, fast_slots=1000, fast_seconds_left=10**9)
    budget = 40.0
    replicas = [schedule_of(store, clock, rate=budget) for _ in range(5)]
    ids = [f"t{n}" for n in range(1000)]
    for task_id in ids:
        await root(store, task_id, cost=1)
        await replicas[0].add(task_id, clock())
    per_second: Counter[int] = Counter()
    for tick in range(40):  # 4 s in steps of 0.1 s
        clock.advance(0.1)
        claims = await asyncio.gather(*(r.claim(32) for r in replicas))
        polls = await asyncio.gather(*(r.take(ids[(tick * 7) % 1000]) for r in replicas))
        per_second[int(tick / 10)] += sum(len(c) for c in claims) + sum(polls)
    assert max(per_second.values()) <= budget + budget  # the first second may spend its burst
    assert sum(per_second.values()) <= budget * 4 + budget
    assert sum(per_second.values()) >= budget * 4 * 0.9  # and the budget is used, not starved


async def test_durations_are_learnt_per_type_and_mode(store: PoolStore, clock: FakeClock) -> None:
    schedule = schedule_of(store, clock)
    unlearnt = await schedule.plan("imagine", "fast")
    assert unlearnt == CheckPlan((2.0, 4.0, 8.0, 16.0, 32.0, 50.0))  # probing, doubling, up to
    # the typical duration: nothing is learnt yet
    for took in ((3.0, 3.0), (3.2, 3.2), (2.9, 2.9), (10.0, 10.0), (3.1, 3.1)):
        await schedule.learn("imagine", "fast", took)
    fresh = schedule_of(store, clock)  # another replica reads what this one learnt
    samples = await fresh.samples("imagine", "fast")
    assert samples == [(3.1, 3.1), (10.0, 10.0), (2.9, 2.9), (3.2, 3.2), (3.0, 3.0)]
    plan = await fresh.plan("imagine", "fast")
    assert 3.1 < plan.first < 3.1 * 1.05 + 0.2  # spread: the median, then the longer ones
    assert plan.last == pytest.approx(10.0 * 1.01 + 0.05)
    assert (await fresh.plan("imagine", "relax")).first == 2.0  # other modes learn apart


def test_the_plan_before_and_after_learning() -> None:
    assert check_plan([], "describe", "fast", 30.0) == CheckPlan(
        (typical_seconds("describe", "fast"),)
    )
    assert check_plan([(5.0, 5.0)] * (MIN_SAMPLES - 1), "imagine", "fast", 2.0).first == 2.0
    exact = check_plan([(5.0, 5.0)] * MIN_SAMPLES, "imagine", "fast", 2.0)
    assert len(exact.checks) == 1 and 5.0 < exact.first < 5.2  # webhooks: just after the end


def test_steady_brackets_are_searched_spread_ones_use_the_median() -> None:
    steady = [(2.6, 3.6), (2.9, 3.5), (2.2, 3.2), (2.5, 3.9)]
    plan = check_plan(steady, "imagine", "fast", 2.0)
    assert plan.first == pytest.approx(3.05)  # the middle of what every bracket allows
    assert len(plan.checks) == 2 and 3.2 < plan.last < 3.3  # and no later than its end
    spread = [(1.0, 1.5), (5.0, 5.5), (3.0, 3.5)]
    assert check_plan(spread, "imagine", "fast", 2.0).checks == pytest.approx(
        (3.5 * 1.01 + 0.05, 5.5 * 1.01 + 0.05)  # the median of the upper bounds, then longer
    )


def test_a_running_check_follows_the_newest_plan() -> None:
    """After a check that found the task running, the next one comes from what is learnt by
    then, not from the plan of the moment the task was sent."""
    cold = check_plan([], "imagine", "fast", 2.0)  # nothing learnt: probe, doubling
    assert cold.next_check(2.0, 2.0) == 4.0
    assert cold.next_check(40.0, 2.0) == 50.0  # never past the typical duration ...
    assert cold.next_check(50.0, 2.0) == 52.0  # ... then every interval
    learnt = check_plan([(2.6, 3.6)] * MIN_SAMPLES, "imagine", "fast", 2.0)
    # a task sent before anything was learnt, found running at its cold first check (2 s):
    # the learnt middle of the range is next, not the cold plan's 4 s
    assert learnt.next_check(2.0, 2.0) == pytest.approx(3.1)
    assert learnt.next_check(3.1, 2.0) == pytest.approx(learnt.last)  # then the range's end
    assert learnt.next_check(learnt.last, 2.0) == pytest.approx(learnt.last + 2.0)
    spread = check_plan([(1.0, 1.5), (5.0, 5.5), (3.0, 3.5)], "imagine", "fast", 2.0)
    assert spread.next_check(spread.first, 2.0) == pytest.approx(5.5 * 1.01 + 0.05)
    assert spread.next_check(spread.last, 2.0) == pytest.approx(spread.last + 2.0)


def test_a_search_pins_a_steady_duration() -> None:
    """Tasks of exactly 3.37 s, ends known to whole seconds only: within a few dozen tasks the
    first check lands just after the end."""
    duration, samples, sent = 3.37, list[tuple[float, float]](), 0.0
    for n in range(40):
        sent = n * 7.13  # tasks start at every fraction of a second
        plan = check_plan(samples[:31], "imagine", "fast", 2.0)
        first = sent + plan.first
        end = sent + duration
        upstream_end = float(int(end))
        if first >= end:
            took = bracket(sent_at=sent, news_at=first, running_at=sent, upstream_end=upstream_end)
        else:
            later = sent + plan.next_check(plan.first, 2.0)
            took = bracket(sent_at=sent, news_at=later, running_at=first, upstream_end=upstream_end)
        samples.insert(0, took)
    final = check_plan(samples[:31], "imagine", "fast", 2.0)
    latest = final.last
    assert duration <= latest < duration + 0.15  # no check ever later than that
    assert final.last - final.first < 0.1  # the range left is tiny


@pytest.mark.parametrize(
    ("news_at", "running_at", "upstream_end", "expected"),
    [
        (10.0, 2.0, None, (2.0, 10.0)),  # seen running at 2, finished by 10
        (10.0, 2.0, 8.0, (8.0, 9.0)),  # the upstream's whole second narrows it
        (10.0, 8.6, 8.0, (8.6, 9.0)),  # seen running within that second
        (10.0, 2.0, 9.4, (9.4, 10.0)),  # not after the news
        (10.0, 2.0, 30.0, (10.0, 10.0)),  # an upstream clock ahead: never after the news
    ],
)
def test_bracket(
    news_at: float, running_at: float, upstream_end: float | None, expected: tuple[float, float]
) -> None:
    took = bracket(sent_at=0.0, news_at=news_at, running_at=running_at, upstream_end=upstream_end)
    assert took == pytest.approx(expected)


async def test_a_check_scheduled_sooner_than_the_trackers_wake_wakes_it(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, fast_slots=4)
    schedule = schedule_of(store, clock)
    for task_id in ("a", "b"):
        assert isinstance(await root(store, task_id), Reservation)
    schedule.planned_wake = clock() + 2.0  # the tracker sleeps for 2 s
    await schedule.add("a", clock() + 3.0)
    assert not schedule.wake.is_set()  # after its wake: it will see it then
    await schedule.add("b", clock() + 0.5)
    assert schedule.wake.is_set() and schedule.planned_wake == clock() + 0.5
