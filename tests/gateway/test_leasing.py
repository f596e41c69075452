"""A reserved task is sent only inside its reservation's lease (gateway.tasks.leasing).

The first three stage a task behind a busy single-slot account, free the slot without handing
it over, and have the dispatcher reserve the staged task with a short lease; the clock (the
gateway's and the emulator's) then moves before the sender gets to it, as a stalled process,
a Redis outage or the upstream's backoff would make it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.tasks.leasing import send_window
from routing.accounts import AccountSpec
from routing.model import Plan
from routing.results import Outcome, Reservation
from tests.harness import Harness, harness
from tests.routing.helpers import FakeClock

ONE_SLOT = (AccountSpec(bot_id=2001, name="one", plan=Plan.PRO, fast_slots=1),)
SHORT_LEASE = 1.0
SHORT = Settings(lease_seconds=SHORT_LEASE)  # a staged task keeps the lease it was staged with


async def staged_then_reserved(h: Harness) -> tuple[str, Reservation]:
    """The second task of the single slot, reserved by the dispatcher with a short lease."""
    first = await h.create(prompt="first --fast")
    second = await h.create(prompt="second --fast")
    first_id, second_id = (a.json()["data"]["task_id"] for a in (first, second))
    assert second.json()["data"]["status"] == "staged"
    await h.gate.store.settle(first_id, Outcome.COMPLETED)  # no hand-over: dispatch=0
    (reservation,) = await h.gate.store.dispatch_staged(1, SHORT_LEASE)
    assert isinstance(reservation, Reservation) and reservation.task_id == second_id
    return second_id, reservation


async def lease_deadline(h: Harness, task_id: str) -> float:
    score = await h.gate.redis.zscore(h.gate.store.keys.leases(), task_id)
    return float(score) / 1000


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_a_staged_task_never_sent_is_sent_by_the_reconciler_and_by_nobody_else(
    redis: Redis, prefix: str
) -> None:
    clock = FakeClock()
    async with harness(redis, prefix, accounts=ONE_SLOT, clock=clock, settings=SHORT) as h:
        task_id, reservation = await staged_then_reserved(h)  # its reply "lost": not sent
        clock.advance(SHORT_LEASE + 1)
        await h.gate.tasks.checker.reconcile()  # claims it: never sent, so it sends it

        async def sent() -> bool:
            return len(await h.received()) == 2

        await until(sent)
        await h.gate.tasks.sender.send_staged(reservation)  # the stale sender gets to it late
        assert len(await h.received()) == 2  # sent once: the claim kept the stale one out
        record = await h.gate.records.load(task_id)
        assert record.upstream_id and not record.terminal


async def test_a_staged_task_marked_sent_is_never_sent_again(redis: Redis, prefix: str) -> None:
    clock = FakeClock()
    async with harness(redis, prefix, accounts=ONE_SLOT, clock=clock, settings=SHORT) as h:
        task_id, _ = await staged_then_reserved(h)
        # as a sender does just before the upstream call, then dies (no upstream id saved)
        assert await h.gate.store.extend_lease(task_id, SHORT_LEASE, to_send=True)
        clock.advance(SHORT_LEASE + 1)
        await h.gate.tasks.checker.reconcile()
        record = await h.gate.records.load(task_id)
        assert record.error_type == "upstream_outcome_unknown"
        assert len(await h.received()) == 1


async def test_a_task_whose_lease_is_shorter_than_the_send_extends_it_then_is_sent(
    redis: Redis, prefix: str
) -> None:
    clock = FakeClock()
    # no webhooks: news of the sent task would set its lease again (to the lease setting)
    quiet = harness(redis, prefix, accounts=ONE_SLOT, clock=clock, settings=SHORT, webhooks=False)
    async with quiet as h:
        task_id, reservation = await staged_then_reserved(h)
        clock.advance(SHORT_LEASE / 2)  # not run out, but shorter than the send may take
        await h.gate.tasks.sender.send_staged(reservation)
        assert len(await h.received()) == 2
        window = send_window(h.settings)
        assert await lease_deadline(h, task_id) >= clock() + window - 0.01


async def test_a_task_sent_at_once_costs_no_lease_call(redis: Redis, prefix: str) -> None:
    clock = FakeClock()
    settings = Settings(lease_seconds=300)  # more than the send window
    async with harness(redis, prefix, accounts=ONE_SLOT, clock=clock, settings=settings) as h:
        answer = await h.create(prompt="one --fast")
        task_id = answer.json()["data"]["task_id"]
        assert answer.json()["data"]["status"] != "staged"
        assert await lease_deadline(h, task_id) == clock() + 300  # as reserved: not extended
