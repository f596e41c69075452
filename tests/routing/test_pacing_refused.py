"""A create the upstream refused never ran: settled `refused`, it gives back its count toward
the account's daily cap (the day it was counted in only), as well as its slot and fast time."""

from __future__ import annotations

from routing.model import Mode
from routing.results import Outcome, Reservation
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, reserved, staged
from tests.routing.test_pacing import at, paced, root, status


async def test_a_refused_create_gives_its_daily_cap_count_back(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T22:00", "Asia/Tokyo")
    await paced(store, 1, timezone="Asia/Tokyo", fast_cap=1, relax_cap=1)
    reserved(await root(store, "f1"))
    assert staged(await root(store, "f2")).reason == "paced:daily_cap"
    settled = await store.settle("f1", Outcome.REFUSED, dispatch=5, lease_seconds=60)
    assert settled is not None and settled.refunded == 60
    # the cap has room again: the staged task takes it in the same step
    assert [r.task_id for r in settled.dispatched if isinstance(r, Reservation)] == ["f2"]
    pace = (await status(store, 1)).pace
    assert pace is not None and pace.fast_today == 1  # f2's; f1's given back
    await store.settle("f2", Outcome.FAILED)  # ran and failed: it counts
    pace = (await status(store, 1)).pace
    assert pace is not None and pace.fast_today == 1


async def test_a_refusal_counted_yesterday_leaves_today_alone(
    store: PoolStore, clock: FakeClock
) -> None:
    at(clock, "2025-06-15T23:59", "Asia/Tokyo")
    await paced(store, 1, timezone="Asia/Tokyo", fast_cap=5, relax_cap=5)
    reserved(await root(store, "r1", Mode.RELAX, 0))  # counted on the 15th
    at(clock, "2025-06-16T00:01", "Asia/Tokyo")
    reserved(await root(store, "r2", Mode.RELAX, 0))  # the 16th: the count starts again
    await store.settle("r1", Outcome.REFUSED)
    pace = (await status(store, 1)).pace
    assert pace is not None and pace.relax_today == 1
