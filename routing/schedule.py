"""CheckSchedule: when each sent task is next checked upstream, shared by every replica.

Every task sent upstream has a next-check time in one sorted set (`Keys.check_schedule`), in
the pool's hash slot: settle removes the task in the same script that frees its slot. Any
replica's tracker claims due tasks atomically (`track_claim.lua`), so N replicas never check
the same task at once and a dead replica's tasks are claimed again once their claim runs out.
A client's GET asks `take` first: it refreshes from upstream only when the task is due, and
then holds the claim as the tracker would. Both spend one token bucket of upstream GETs per
second for the whole deployment.

News from a webhook or a poll moves the next check later (`ZADD XX GT`: never earlier, and
never re-adding a settled task); a check that finds the task still running sets it to now +
the tracking interval (`XX`). The durations of finished tasks are kept per task type and mode
(a capped list) and read through a short local cache: `routing.durations` turns them into the
first check's delay.

Times are the injected clock's, in unix milliseconds inside Redis, as for every pool script.
Every Redis error becomes StoreError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from routing import codec
from routing.durations import SAMPLES, Bracket, CheckPlan, check_plan
from routing.errors import StoreError, translated
from routing.keys import Keys
from routing.pipe import Pipe
from routing.scripts import Scripts
from routing.storeops import StoreOp

CACHE_SECONDS = 5.0  # how long a replica trusts its copy of the learnt durations


@dataclass(frozen=True)
class Due:
    """A task claimed for a completion check; `late` is how far past its due time (s)."""

    task_id: str
    late: float


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _bracket(raw: str) -> Bracket:
    """`"<at least ms> <at most ms>"` (a single figure: both)."""
    low, _, high = raw.partition(" ")
    return int(low) / 1000, int(high or low) / 1000


class CheckSchedule:
    def __init__(
        self,
        pipe: Pipe,
        keys: Keys,
        *,
        interval: float,
        claim_seconds: float,
        gets_per_second: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipe = pipe
        self.keys = keys
        self.interval = interval
        self.claim_seconds = claim_seconds
        self.gets_per_second = gets_per_second
        self.clock = clock
        self._scripts = Scripts(pipe, keys)
        self._key = keys.check_schedule()
        self._learnt: dict[tuple[str, str], tuple[float, list[Bracket]]] = {}
        # This replica's tracker sleeps until `planned_wake`; a check scheduled here for
        # before then sets `wake`, so the tracker is not late by up to an interval.
        self.planned_wake = float("inf")
        self.wake = asyncio.Event()

    def _sooner(self, at: float) -> None:
        if at < self.planned_wake:
            self.planned_wake = at
            self.wake.set()

    async def _reply(self, op: StoreOp, reply: Awaitable[Any]) -> Any:
        return await translated(op, reply)

    # -- durations -------------------------------------------------------------------------
    async def samples(self, task_type: str, mode: str) -> list[Bracket]:
        """The learnt durations of one type and mode, (at least, at most) seconds, newest
        first (cached briefly)."""
        now = time.monotonic()
        cached = self._learnt.get((task_type, mode))
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        raw = await self._reply(
            StoreOp.DURATIONS,
            self.pipe.send(b"LRANGE", self.keys.durations(task_type, mode), 0, SAMPLES - 1),
        )
        samples = [_bracket(codec.text(item)) for item in raw]
        self._learnt[(task_type, mode)] = (now, samples)
        return samples

    async def plan(self, task_type: str, mode: str) -> CheckPlan:
        """When to check a task of this type and mode sent now (seconds after sending).
        Advisory: with Redis failing, from what this replica last read (or nothing learnt),
        so that a task about to be sent is never held back by it."""
        try:
            samples = await self.samples(task_type, mode)
        except StoreError:
            cached = self._learnt.get((task_type, mode))
            samples = cached[1] if cached is not None else []
        return check_plan(samples, task_type, mode, self.interval)

    def at(self, task_id: str, at: float) -> Coroutine[Any, Any, Any]:
        """A check found the task running before its latest expected end: check then."""
        self._sooner(at)
        return self._reply(
            StoreOp.SCHEDULE, self.pipe.send(b"ZADD", self._key, b"XX", _ms(at), task_id)
        )

    def learn(self, task_type: str, mode: str, took: Bracket) -> Coroutine[Any, Any, Any]:
        """Remember how long a finished task took (sent when called); this replica uses it
        at once, the others within CACHE_SECONDS."""
        cached = self._learnt.get((task_type, mode))
        if cached is not None:
            self._learnt[(task_type, mode)] = (cached[0], [took, *cached[1]][:SAMPLES])
        key = self.keys.durations(task_type, mode)
        push = self.pipe.send(b"LPUSH", key, f"{_ms(took[0])} {_ms(took[1])}")
        trim = self.pipe.send(b"LTRIM", key, 0, SAMPLES - 1)
        return self._reply(StoreOp.DURATIONS, asyncio.gather(push, trim))

    # -- the schedule ----------------------------------------------------------------------
    def add(self, task_id: str, at: float) -> Coroutine[Any, Any, Any]:
        """Schedule a task just sent upstream (sent when called)."""
        self._sooner(at)
        return self._reply(StoreOp.SCHEDULE, self.pipe.send(b"ZADD", self._key, _ms(at), task_id))

    def later(self, task_id: str, at: float) -> Coroutine[Any, Any, Any]:
        """News: the next check no earlier than `at`; nothing if the task left the schedule."""
        send = self.pipe.send(b"ZADD", self._key, b"XX", b"GT", _ms(at), task_id)
        return self._reply(StoreOp.SCHEDULE, send)

    def again(self, task_id: str) -> Coroutine[Any, Any, Any]:
        """A check found the task running: the next one a tracking interval from now."""
        self._sooner(self.clock() + self.interval)
        at = _ms(self.clock() + self.interval)
        return self._reply(StoreOp.SCHEDULE, self.pipe.send(b"ZADD", self._key, b"XX", at, task_id))

    async def claim(self, limit: int) -> list[Due]:
        now = self.clock()
        reply = await self._reply(
            StoreOp.TRACK_CLAIM,
            self._scripts.run(
                "track_claim",
                _ms(now),
                limit,
                _ms(self.claim_seconds),
                f"{self.gets_per_second:g}",
            ),
        )
        return [Due(codec.text(task), max(0.0, now - int(due) / 1000)) for task, due in reply]

    async def take(self, task_id: str) -> bool:
        """May a client's GET refresh this task from upstream now? (Claims it if so.)"""
        reply = await self._reply(
            StoreOp.TRACK_TAKE,
            self._scripts.run(
                "track_take",
                _ms(self.clock()),
                task_id,
                _ms(self.claim_seconds),
                f"{self.gets_per_second:g}",
            ),
        )
        return bool(reply)

    async def next_due(self) -> float | None:
        """The earliest next-check time (unix seconds), None when nothing is tracked."""
        reply = await self._reply(
            StoreOp.SCHEDULE, self.pipe.send(b"ZRANGE", self._key, 0, 0, b"WITHSCORES")
        )
        return int(float(codec.text(reply[1]))) / 1000 if reply else None

    async def counts(self) -> tuple[int, int]:
        """(tasks tracked, tasks due now)."""
        now = _ms(self.clock())
        tracked = self.pipe.send(b"ZCARD", self._key)
        due = self.pipe.send(b"ZCOUNT", self._key, b"-inf", now)
        both = await self._reply(StoreOp.SCHEDULE, asyncio.gather(tracked, due))
        return int(both[0]), int(both[1])
