"""A reserved task is sent only inside its reservation's lease (gateway.tasks.leasing).

The first two stage a task behind a busy single-slot account, free the slot without handing
it over, and have the dispatcher reserve the staged task with a short lease; the clock (the
gateway's and the emulator's) then moves before the sender gets to it, as a stalled process,
a Redis outage or the upstream's backoff would make it.
"""

from __future__ import annotations

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


async def test_a_task_held_past_its_lease_is_not_sent_once_a_reconciler_claimed_it(
    redis: Redis, prefix: str
) -> None:
    clock = FakeClock()
    async with harness(redis, prefix, accounts=ONE_SLOT, clock=clock, settings=SHORT) as h:
        task_id, reservation = await staged_then_reserved(h)
        clock.advance(SHORT_LEASE + 1)
        await h.gate.tasks.checker.reconcile()  # claims it and ends it: the slot is given back
        record = await h.gate.records.load(task_id)
        assert record.error_type == "upstream_outcome_unknown"
        await h.gate.tasks.sender.send_staged(reservation)  # the sender gets to it late
        assert len(await h.received()) == 1  # only the first: never sent on a given-back slot


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
