"""Gaps held lazily (pacing.lua): a submission only writes when its gap ends (`gu`); routing
holds an account when it meets it inside its gap (a candidate, or every running gap before a
decision stages), and a gap nothing meets ends without a write. The rules stay the rules:
no root task inside a gap, the reason and paced_past as if every gap were held."""

from __future__ import annotations

import pytest

from routing.catalog import Catalog
from routing.errors import PacedUnavailableError
from routing.model import Mode, Strategy
from routing.pacing import Pacing
from routing.results import Outcome
from routing.store import PoolStore
from tests.routing import helpers
from tests.routing.helpers import FakeClock, add, reserved, staged
from tests.routing.test_pacing import paced, root, status


async def members(store: PoolStore, index: str) -> dict[str, float]:
    rows = await store.redis.zrange(store.keys.index(index), 0, -1, withscores=True)
    return {member.decode(): score for member, score in rows}


async def account(store: PoolStore, bot_id: int) -> dict[bytes, bytes]:
    raw: dict[bytes, bytes] = await store.redis.hgetall(store.keys.account(bot_id))
    return raw


async def test_a_gap_nothing_meets_ends_without_a_write(store: PoolStore, clock: FakeClock) -> None:
    await paced(store, 1, min_gap_seconds=60)
    await paced(store, 2, min_gap_seconds=60)
    first = reserved(await root(store, "r1")).bot_id
    ends = clock() + 60
    assert await members(store, "gap") == {str(first): ends * 1000}
    assert str(first) in await members(store, "fs")  # still a candidate: its gap not met
    assert (await members(store, "pace"))[str(first)] > ends * 1000  # the day's end, not the gap's
    assert (await status(store, first)).pace.gap_until == ends  # type: ignore[union-attr]
    before = await account(store, first)
    second = reserved(await root(store, "r2")).bot_id  # the other one: nothing meets `first`
    assert second == 3 - first
    clock.advance(61)
    await store.tick()
    assert await account(store, first) == before  # its gap ended: no write
    assert await members(store, "gap") == {}  # the tick dropped both ended entries
    pace = (await status(store, first)).pace
    assert pace is not None and (pace.gap_until, pace.held) == (None, "")
    assert reserved(await root(store, "r3")).bot_id == first  # and it takes work again


async def test_routing_holds_an_account_it_meets_inside_its_gap(
    store: PoolStore, clock: FakeClock
) -> None:
    await paced(store, 1, min_gap_seconds=60)
    reserved(await root(store, "r1"))
    ends = (clock() + 60) * 1000
    assert staged(await root(store, "r2")).reason == "paced:gap"
    raw = await account(store, 1)
    assert (raw.get(b"gp"), raw.get(b"gr"), raw.get(b"gu")) == (b"1", str(int(ends)).encode(), None)
    assert "1" not in await members(store, "fs")
    assert (await members(store, "fp"))["1"] > 0
    assert (await members(store, "pace"))["1"] == ends  # its end is a change the tick applies
    assert await members(store, "gap") == {}
    clock.advance(60)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r2"]


async def test_a_burst_of_candidates_in_their_gaps_before_a_free_account(
    store: PoolStore, clock: FakeClock
) -> None:
    """More accounts in their gaps at the front of the index than a pick looks at: the
    decision holds them and still finds the free account behind them."""
    for bot_id in range(1, 13):
        await paced(store, bot_id, min_gap_seconds=600)
    await add(store, 13, fast_seconds_left=3600)  # unpaced, the least fast time: last in ties
    for n in range(12):
        assert reserved(await root(store, f"r{n}")).bot_id != 13
    for n in range(12):
        await store.settle(f"r{n}", Outcome.COMPLETED)  # every paced one free again, in a gap
    assert len(await members(store, "gap")) == 12
    assert reserved(await root(store, "x")).bot_id == 13
    assert await members(store, "gap") == {}  # each met, or held before staging: once
    assert len(await members(store, "fp")) == 12


async def test_most_fast_left_meets_its_top_account_in_its_gap(store: PoolStore) -> None:
    """The account with the most fast time stays first after a task: the next decision meets
    it in its gap and holds it (the costly case: a hold per decision)."""
    await Catalog(store).set_strategy(Strategy.MOST_FAST_LEFT)
    for bot_id, hours in ((1, 30), (2, 20), (3, 10)):
        await add(store, bot_id, fast_seconds_left=hours * 3600, pacing=Pacing(min_gap_seconds=60))
    got = [reserved(await root(store, f"r{n}")).bot_id for n in range(3)]
    assert got == [1, 2, 3]
    assert staged(await root(store, "r3")).reason == "paced:gap"


async def test_eligible_now_counts_out_an_account_in_its_gap(
    store: PoolStore, clock: FakeClock
) -> None:
    catalog = Catalog(store)
    await paced(store, 1, min_gap_seconds=60)
    await paced(store, 2, min_gap_seconds=60)
    assert (await catalog.pool_snapshot()).eligible_now == 2
    reserved(await root(store, "r1"))
    assert (await catalog.pool_snapshot()).eligible_now == 1  # not held: counted out by `ix:gap`
    clock.advance(60)
    assert (await catalog.pool_snapshot()).eligible_now == 2  # ended: no write needed


async def test_a_pinned_task_waits_out_a_gap_not_met_yet(
    store: PoolStore, clock: FakeClock
) -> None:
    await paced(store, 1, min_gap_seconds=600)
    reserved(await root(store, "r1", pin=1))
    assert staged(await root(store, "r2", pin=1)).reason == "paced:gap"
    with pytest.raises(PacedUnavailableError) as refused:  # the gap's end is past the timeout
        await helpers.root(store, "r3", pin=1, staged_timeout=300)
    assert (refused.value.reason, refused.value.retry_after) == ("paced:gap", 600)
    clock.advance(600)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r2"]


@pytest.mark.parametrize(("mode", "cost"), [(Mode.FAST, 60), (Mode.RELAX, 0)])
async def test_a_tag_limited_key_never_reaches_an_account_in_its_gap(
    store: PoolStore, clock: FakeClock, mode: Mode, cost: int
) -> None:
    """A tag-limited key's accounts are judged one by one (O(their number)): one in a gap not
    held yet counts as held there, without a write."""
    for bot_id in (1, 2):
        await add(store, bot_id, tags=("eu",), pacing=Pacing(min_gap_seconds=60))
    await add(store, 3)  # untagged, free: never for this key
    first = reserved(await root(store, "r1", mode, cost, tags=("eu",))).bot_id
    assert reserved(await root(store, "r2", mode, cost, tags=("eu",))).bot_id == 3 - first
    assert staged(await root(store, "r3", mode, cost, tags=("eu",))).reason == "paced:gap"
    clock.advance(60)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r3"]


async def test_the_jitter_reads_a_uuid_ids_last_hex_digits(
    store: PoolStore, clock: FakeClock
) -> None:
    """mjgate's task ids are random UUIDs: their last 32 bits are the jitter's random part
    (no hashing); any other id's SHA-1 gives it (test_pacing.py's jitter bounds)."""
    await paced(store, 1, min_gap_seconds=30, gap_jitter_seconds=20)
    start = clock()
    reserved(await root(store, "6f1c2d7e-5b4a-4c3d-9e8f-00000000400a"))  # 0x400a ms
    assert (await status(store, 1)).pace.gap_until == start + 30 + 0x400A / 1000  # type: ignore[union-attr]


@pytest.mark.parametrize("held", [False, True], ids=["not met yet", "held"])
async def test_a_lowered_gap_shortens_the_running_one(
    store: PoolStore, clock: FakeClock, held: bool
) -> None:
    """An operator who lowers a gap set too long frees the account within the new gap, not at
    the old gap's end; a raised gap starts with the next submission; no gap frees it at once."""
    await paced(store, 1, min_gap_seconds=3600)
    reserved(await root(store, "r1"))
    await store.settle("r1", Outcome.COMPLETED)
    start = clock()
    if held:  # routing met it: held until the gap's end
        assert staged(await root(store, "r0")).reason == "paced:gap"
        assert (await status(store, 1)).pace.held  # type: ignore[union-attr]
    clock.advance(100)
    await paced(store, 1, min_gap_seconds=3600)  # unchanged: its gap keeps its end
    assert (await status(store, 1)).pace.gap_until == start + 3600  # type: ignore[union-attr]
    await paced(store, 1, min_gap_seconds=7200)  # raised: from the next submission
    assert (await status(store, 1)).pace.gap_until == start + 3600  # type: ignore[union-attr]
    await paced(store, 1, min_gap_seconds=20, gap_jitter_seconds=10)
    assert (await status(store, 1)).pace.gap_until == clock() + 30  # type: ignore[union-attr]
    clock.advance(29)
    await store.tick()
    assert staged(await root(store, "r2")).reason == "paced:gap"
    clock.advance(1)
    await store.tick()
    dispatched = [r.task_id for r in await store.dispatch_staged(10, 60)]
    assert dispatched == (["r0"] if held else ["r2"])
    await store.settle(dispatched[0], Outcome.COMPLETED)
    await paced(store, 1, min_gap_seconds=600)
    assert (await status(store, 1)).pace.gap_until is not None
    await paced(store, 1, fast_cap=5)  # no gap at all: free at once
    pace = (await status(store, 1)).pace
    assert pace is not None and (pace.gap_until, pace.held) == (None, "")
    assert await members(store, "gap") == {}
    assert "1" in await members(store, "fs")


async def test_the_next_pacing_change_counts_only_while_work_is_staged(
    store: PoolStore, clock: FakeClock
) -> None:
    """The dispatch loop wakes at it (gateway/tasks/loops.py): a held gap's end frees the
    account for the queue first, not for the first fresh create after it."""
    await paced(store, 1, min_gap_seconds=60)
    assert await store.next_pacing_change() is None  # nothing staged
    reserved(await root(store, "r1"))
    await store.settle("r1", Outcome.COMPLETED)
    assert await store.next_pacing_change() is None
    assert staged(await root(store, "r2")).reason == "paced:gap"  # its gap held now
    assert await store.next_pacing_change() == clock() + 60
    clock.advance(60)
    assert [r.task_id for r in await store.dispatch_staged(10, 60)] == ["r2"]
    assert await store.next_pacing_change() is None
