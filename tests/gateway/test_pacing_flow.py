"""Pacing end to end: a burst on a pool with hours, gaps and caps, through the gateway to the
emulator, on one clock the test moves. The emulator's received log is the evidence: no
account ever received two root tasks closer than its gap, more than its cap in a local day,
or anything outside its hours; and staged work drains as windows open and caps reset."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from routing.accounts import AccountSpec
from routing.model import Plan
from routing.pacing import Pacing, phase_at
from tests.harness import Harness, harness
from tests.routing.helpers import FakeClock
from tests.routing.test_pacing_plan import ms

BERLIN = "Europe/Berlin"
PROFILE = Pacing(
    timezone=BERLIN,
    active_hours=("08:00-20:00",),
    fast_cap=3,
    min_gap_seconds=30,
    gap_jitter_seconds=10,
)
ACCOUNTS = (
    AccountSpec(bot_id=1, plan=Plan.PRO, pacing=PROFILE),
    AccountSpec(bot_id=2, plan=Plan.PRO, pacing=PROFILE),
    AccountSpec(bot_id=3, plan=Plan.PRO, pacing=replace(PROFILE, min_gap_seconds=60)),
)
BURST = 12


async def _unsent(h: Harness) -> int:
    """Tasks whose record says they were not sent yet (staged, or reserved and being sent): a
    staged task the dispatch reserved leaves the queue before its send updates its record."""
    records = [await h.gate.records.load(task_id) for task_id in h.created]
    return sum(1 for r in records if r is not None and r.status in ("staged", "reserved"))


async def settled(h: Harness, clock: FakeClock, timeout: float = 10.0) -> None:
    """Wait until the gateway has sent everything pacing allows at the clock's time: staged
    work remains only while every account is held until a later time (read from the account
    views; a change due by now, or a plan not computed yet, means the gateway isn't done:
    these accounts always have a next window edge)."""
    deadline = time.monotonic() + timeout
    while True:
        staged = await h.gate.store.staged_count()
        accounts = await h.gate.catalog.list_accounts()
        ready = [
            a.bot_id
            for a in accounts
            if a.pace is not None
            and (
                (not a.pace.held and a.pace.fast_today < 3)  # fast work: its cap counts
                or (a.pace.ready_at is not None and a.pace.ready_at <= clock())
                or (a.pace.day_ends is not None and a.pace.day_ends <= clock())
                or a.pace.phase_until is None  # its plan used up: the tick plans again
                or a.pace.next_phase is None
                or a.pace.phase_until <= clock()  # a window edge due
            )
        ]
        if (staged == 0 or not ready) and await _unsent(h) == staged:
            return  # (every task not sent yet is still queued: none handed over mid-send)
        assert time.monotonic() < deadline, f"{staged} staged while {ready} could take them"
        await asyncio.sleep(0.02)


async def test_a_burst_never_breaks_hours_gaps_or_caps_and_drains_as_windows_open(
    redis: Redis, prefix: str
) -> None:
    clock = FakeClock(ms("2025-06-16T07:59:00", BERLIN) / 1000)
    settings = Settings(staged_timeout=3 * 86400, lease_seconds=4 * 86400)
    async with harness(redis, prefix, accounts=ACCOUNTS, clock=clock, settings=settings) as h:
        for n in range(BURST):
            answer = await h.create(prompt=f"burst {n} --fast")
            assert answer.status_code == 200, answer.text
        assert len(await h.received()) == 0  # before 08:00 nothing goes out
        record = await h.gate.records.load(h.created[0])
        assert record.status == "staged"
        assert record.history[-1]["reason"] == "paced:outside_hours"

        clock.now = ms("2025-06-16T08:00:00", BERLIN) / 1000  # the window opens
        await settled(h, clock)
        assert len(await h.received()) == 3  # one each; then their gaps hold the rest
        for _ in range(90):  # three minutes, 2 s at a time
            clock.advance(2)
            await settled(h, clock)
        assert len(await h.received()) == 9  # three each: the caps hold the last three
        clock.now = ms("2025-06-17T07:59:59", BERLIN) / 1000  # caps reset; still before 08:00
        await settled(h, clock)
        assert len(await h.received()) == 9
        clock.now = ms("2025-06-17T08:00:00", BERLIN) / 1000
        await settled(h, clock)
        received = await h.received()
        assert len(received) == BURST and await h.gate.store.staged_count() == 0
        await h.assert_ran_as_routed(at_least=BURST)
    check_the_log(received)


def check_the_log(received: list[dict[str, Any]]) -> None:
    gaps = {spec.bot_id: spec.pacing.min_gap_seconds for spec in ACCOUNTS if spec.pacing}
    times: dict[int, list[float]] = defaultdict(list)
    for entry in received:
        assert entry["status"] == 200 and entry["task_type"] == "imagine"
        times[entry["bot_id"]].append(entry["at"])
    assert sorted(times) == [1, 2, 3]
    for bot_id, stamps in times.items():
        stamps.sort()
        for at in stamps:
            assert phase_at(PROFILE, round(at * 1000)) == "a", (bot_id, at)
        for before, after in pairwise(stamps):
            assert after - before >= gaps[bot_id], (bot_id, before, after)
        per_day: dict[str, int] = defaultdict(int)
        for at in stamps:
            per_day[datetime.fromtimestamp(at, ZoneInfo(BERLIN)).date().isoformat()] += 1
        assert max(per_day.values()) <= 3, (bot_id, per_day)
        assert per_day == {"2025-06-16": 3, "2025-06-17": 1}


async def test_a_create_the_upstream_refused_does_not_use_up_the_daily_cap(
    redis: Redis, prefix: str
) -> None:
    """GoAPI refused the request (it never ran): the account's one job of the day is still
    there for the next create. A 5xx, which may have run, still counts."""
    capped = (AccountSpec(bot_id=1, plan=Plan.PRO, pacing=Pacing(fast_cap=1)),)
    async with harness(redis, prefix, accounts=capped) as h:
        h.faulty.faults = [
            httpx.Response(400, json={"code": 400, "data": None, "message": "bad prompt"})
        ]
        assert (await h.create(prompt="refused --fast")).status_code == 400
        view = await h.gate.catalog.get_account(1)
        assert view is not None and view.pace is not None and view.pace.fast_today == 0
        answer = await h.create(prompt="runs --fast")
        assert answer.status_code == 200 and answer.json()["data"]["status"] != "staged"
        view = await h.gate.catalog.get_account(1)
        assert view is not None and view.pace is not None and view.pace.fast_today == 1


async def test_a_task_pacing_would_hold_past_the_staged_timeout_is_503_with_retry_after(
    redis: Redis, prefix: str
) -> None:
    """Staged, it could only end `staged_timeout`: refused now, with when to come back (the
    first pacing change: local midnight, 3 h after 21:00 Berlin)."""
    clock = FakeClock(ms("2025-06-16T21:00:00", BERLIN) / 1000)
    night = (AccountSpec(bot_id=1, plan=Plan.PRO, pacing=PROFILE),)
    async with harness(redis, prefix, accounts=night, clock=clock) as h:
        answer = await h.create(prompt="late --fast")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["type"] == "paced_unavailable" and error["reason"] == "paced:outside_hours"
        assert answer.headers["retry-after"] == str(3 * 3600) == str(error["retry_after"])
        assert await h.gate.store.staged_count() == 0
        view = await h.gate.catalog.get_account(1)
        assert view is not None and view.in_flight == 0


async def test_the_dispatcher_wakes_when_a_gap_ends_while_work_is_staged(
    redis: Redis, prefix: str
) -> None:
    """Found from outside: a create arriving just after a gap ended took the account ahead of
    the task staged for it, because the dispatcher woke only every interval. It now wakes at
    the gap's end (the first pacing change) while work is staged."""
    clock = FakeClock(ms("2025-06-16T12:00:00", BERLIN) / 1000)
    gapped = (AccountSpec(bot_id=1, plan=Plan.PRO, pacing=Pacing(min_gap_seconds=0.1)),)
    async with harness(redis, prefix, accounts=gapped, clock=clock) as h:
        loops = h.gate.tasks.loops
        assert await loops.dispatch_delay() == loops.interval  # nothing staged
        first = await h.create(prompt="a --fast")
        assert first.json()["data"]["status"] != "staged"
        second = await h.create(prompt="b --fast")
        assert second.json()["data"]["status"] == "staged"
        assert await loops.dispatch_delay() == pytest.approx(0.101)  # the gap's end, not 0.2


async def test_a_task_pacing_held_to_its_staged_timeout_says_so(redis: Redis, prefix: str) -> None:
    """Found from outside: its message said "no account was free", though accounts were
    free and pacing held them; it now names the rule that staged it."""
    clock = FakeClock(ms("2025-06-16T12:00:00", BERLIN) / 1000)
    gapped = (AccountSpec(bot_id=1, plan=Plan.PRO, pacing=Pacing(min_gap_seconds=600)),)
    async with harness(redis, prefix, accounts=gapped, clock=clock) as h:
        assert (await h.create(prompt="a --fast")).json()["data"]["status"] != "staged"
        staged = (await h.create(prompt="b --fast")).json()["data"]
        assert staged["status"] == "staged"
        await h.gate.tasks.loops.tracker.staged_timeout(staged["task_id"])
        error = (await h.get(staged["task_id"])).json()["data"]["error"]
        assert "staged by pacing (paced:gap)" in error["message"]


async def test_a_due_change_the_dispatch_did_not_apply_is_no_busy_loop(
    redis: Redis, prefix: str
) -> None:
    """A pacing change already due when the loop asks (the last dispatch left it: too many
    at once, or a failing script) is looked at again after 50 ms once, then at the interval."""
    clock = FakeClock(ms("2025-06-16T12:00:00", BERLIN) / 1000)
    gapped = (AccountSpec(bot_id=1, plan=Plan.PRO, pacing=Pacing(min_gap_seconds=0.1)),)
    async with harness(redis, prefix, accounts=gapped, clock=clock) as h:
        loops = h.gate.tasks.loops
        await loops.stop()  # nothing applies the change below: as if the dispatch had failed
        await h.create(prompt="a --fast")
        assert (await h.create(prompt="b --fast")).json()["data"]["status"] == "staged"
        clock.advance(1)  # the gap's end is past, not applied
        assert await loops.dispatch_delay() == 0.05
        assert await loops.dispatch_delay() == loops.interval
