"""Settling reservations exactly once, refunds, the switch to relax, and leases."""

from __future__ import annotations

import pytest

from routing.catalog import Catalog
from routing.model import Mode, Plan, Setting
from routing.results import LeaseClaim, Outcome, Settlement
from routing.store import PoolStore
from tests.routing.helpers import FakeClock, add, reserved, root, staged

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster


async def _figures(store: PoolStore, bot_id: int) -> tuple[int, int, int, int]:
    account = await Catalog(store).get_account(bot_id)
    assert account is not None
    return (
        account.fast_seconds_left,
        account.fast_seconds_reserved,
        account.fast_in_flight,
        account.relax_in_flight,
    )


async def test_settle_happens_exactly_once(store: PoolStore) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    reserved(await root(store, "t1"))
    first = await store.settle("t1", Outcome.COMPLETED)
    assert first == Settlement("t1", 1, Mode.FAST, Outcome.COMPLETED, refunded=0)
    assert await store.settle("t1", Outcome.COMPLETED) is None
    assert await store.settle("t1", Outcome.FAILED) is None
    assert await store.settle("never", Outcome.FAILED) is None
    assert await _figures(store, 1) == (540, 0, 0, 0)


async def test_completed_keeps_the_fast_time_failed_and_cancelled_refund(
    store: PoolStore,
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    for task in ("done", "failed", "cancelled"):
        reserved(await root(store, task))
    assert await _figures(store, 1) == (420, 180, 3, 0)
    assert (await store.settle("done", Outcome.COMPLETED)).refunded == 0  # type: ignore[union-attr]
    assert await _figures(store, 1) == (420, 120, 2, 0)
    assert (await store.settle("failed", Outcome.FAILED)).refunded == 60  # type: ignore[union-attr]
    cancelled = await store.settle("cancelled", Outcome.CANCELLED)
    assert cancelled is not None and cancelled.refunded == 60
    assert await _figures(store, 1) == (540, 0, 0, 0)


async def test_relax_settle_frees_the_relax_slot(store: PoolStore) -> None:
    await add(store, 1, Plan.STANDARD)
    reserved(await root(store, "r1", Mode.RELAX, 0))
    assert (await _figures(store, 1))[3] == 1
    settled = await store.settle("r1", Outcome.FAILED)
    assert settled is not None and (settled.mode, settled.refunded) == (Mode.RELAX, 0)
    assert (await _figures(store, 1))[3] == 0


async def test_reaching_zero_fast_time_switches_the_setting_to_relax(
    store: PoolStore, catalog: Catalog
) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=120)
    reserved(await root(store, "a"))
    reserved(await root(store, "b"))
    await store.settle("a", Outcome.COMPLETED)
    account = await catalog.get_account(1)
    assert account is not None and account.setting is Setting.FAST  # 60 still reserved
    await store.settle("b", Outcome.COMPLETED)
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.setting, account.declared_setting) == (Setting.RELAX, Setting.FAST)
    assert account.history[0]["what"] == "setting"
    assert (account.history[0]["from"], account.history[0]["to"]) == ("fast", "relax")
    assert account.history[0]["reason"] == "no_fast_time"
    again = reserved(await root(store, "c"))
    assert (again.mode, again.decision) == (Mode.RELAX, "fallback_relax:no_fast_hours")


async def test_a_failure_refunds_before_the_switch(store: PoolStore, catalog: Catalog) -> None:
    await add(store, 1, Plan.STANDARD, fast_seconds_left=60)
    reserved(await root(store, "a"))
    await store.settle("a", Outcome.FAILED)
    account = await catalog.get_account(1)
    assert account is not None
    assert (account.setting, account.fast_seconds_left) == (Setting.FAST, 60)


async def test_settle_after_the_account_was_removed_touches_only_the_reservation(
    store: PoolStore,
    catalog: Catalog,
) -> None:
    await add(store, 1, Plan.PRO, fast_seconds_left=600)
    reserved(await root(store, "t1"))
    await catalog.remove_account(1, force=True)
    await add(store, 1, Plan.PRO, fast_seconds_left=600)  # the same bot_id, created again
    settled = await store.settle("t1", Outcome.FAILED)
    assert settled is not None and (settled.bot_id, settled.refunded) == (1, 0)
    assert await _figures(store, 1) == (600, 0, 0, 0)
    assert await store.settle("t1", Outcome.FAILED) is None


async def test_expired_leases_are_claimed_by_one_replica_at_a_time(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    reserved(await root(store, "short", lease_seconds=10))
    reserved(await root(store, "long", lease_seconds=100))
    clock.advance(5)
    assert await store.claim_expired_leases(10, 30) == []
    clock.advance(6)
    assert await store.claim_expired_leases(10, 30) == [LeaseClaim("short", 1, Mode.FAST)]
    assert await store.claim_expired_leases(10, 30) == []  # pushed on by the claim
    clock.advance(31)
    assert await store.claim_expired_leases(10, 30) == [LeaseClaim("short", 1, Mode.FAST)]


async def test_extend_lease_keeps_a_reservation_off_the_claims(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    reserved(await root(store, "t1", lease_seconds=10))
    clock.advance(8)
    assert await store.extend_lease("t1", 10) is True
    clock.advance(8)
    assert await store.claim_expired_leases(10, 30) == []
    await store.settle("t1", Outcome.COMPLETED)
    assert await store.extend_lease("t1", 10) is False
    clock.advance(100)
    assert await store.claim_expired_leases(10, 30) == []


async def test_a_reservation_is_marked_sent_once_and_never_extended_to_be_sent_again(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO)
    reservation = reserved(await root(store, "t1", lease_seconds=10))
    assert reservation.lease_until == clock() + 10  # what the sender measures against
    clock.advance(11)  # run out but not claimed: a sender may still take it on
    assert await store.extend_lease("t1", 60, to_send=True) is True  # marked sent
    assert await store.extend_lease("t1", 60, to_send=True) is False  # never sent twice
    assert await store.extend_lease("t1", 60) is True  # news of the sent task
    clock.advance(61)
    (claim,) = await store.claim_expired_leases(10, 30)
    assert claim == LeaseClaim("t1", 1, Mode.FAST) and claim.resend is None  # not staged


async def test_a_staged_task_never_sent_is_handed_to_its_claim_alone(
    store: PoolStore, clock: FakeClock
) -> None:
    await add(store, 1, Plan.PRO, fast_slots=1)
    reserved(await root(store, "t1"))
    staged(await root(store, "t2"))
    freed = await store.settle("t1", Outcome.COMPLETED, dispatch=1)
    assert freed is not None and [r.task_id for r in freed.dispatched] == ["t2"]
    clock.advance(61)  # its reply was lost: nobody sent it, nobody marked it
    (claim,) = await store.claim_expired_leases(10, 30)
    resend = claim.resend
    assert resend is not None and (resend.task_id, resend.staged, resend.cost) == ("t2", True, 60)
    assert await store.extend_lease("t2", 60, to_send=True) is False  # a stale sender
    assert await store.extend_lease("t2", 60, to_send=True, claim=resend.claim) is True
    assert await store.extend_lease("t2", 60, to_send=True, claim=resend.claim) is False
    clock.advance(61)
    (again,) = await store.claim_expired_leases(10, 30)
    assert again.resend is None  # marked sent: its outcome is unknown, never re-sent


async def test_claims_are_bounded_and_oldest_first(store: PoolStore, clock: FakeClock) -> None:
    await add(store, 1, Plan.PRO)
    for n in range(5):
        reserved(await root(store, f"t{n}", lease_seconds=10 + n))
    clock.advance(60)
    assert [c.task_id for c in await store.claim_expired_leases(3, 30)] == ["t0", "t1", "t2"]
    assert [c.task_id for c in await store.claim_expired_leases(3, 30)] == ["t3", "t4"]
