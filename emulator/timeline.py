"""Scheduled task transitions, applied in time order, lazily or by a ticker.

Every transition (start, a progress step, the end) is an event on a heap keyed by
(time, sequence). `pop_due(now)` pops what is due; the engine applies it, possibly scheduling more
events at the same time, which the same loop then pops. So state is computed lazily on access
from the injected clock, deterministically, and the ticker (an asyncio task owned by the app's
lifespan) only makes sure webhooks leave on time when nobody is asking.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from enum import IntEnum
from typing import Any


class Step(IntEnum):
    START = 0
    PROGRESS = 1
    END = 2


log = logging.getLogger(__name__)

Event = tuple[float, int, Step, int, Any]  # (at, sequence, step, progress, task)


class Timeline:
    def __init__(self) -> None:
        self._heap: list[Event] = []
        self._sequence = itertools.count()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._target: float | None = None  # when the ticker means to wake up

    def schedule(self, at: float, step: Step, task: Any, progress: int = 0) -> None:
        heapq.heappush(self._heap, (at, next(self._sequence), step, progress, task))

    def poke(self) -> None:
        """Wake the ticker if an event is now due before it meant to wake up.

        Called once after each operation rather than per event, so instant-mode creates, whose
        events are all applied before the answer, never wake it.
        """
        if self._waiter is None or not self._heap:
            return
        if self._target is None or self._heap[0][0] < self._target:
            _release(self._waiter)

    def pop_due(self, now: float) -> Event | None:
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)
        return None

    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def stop(self) -> None:
        """Make the ticker leave at its next turn (with or without a cancellation)."""
        self._stopping = True
        if self._waiter is not None:
            _release(self._waiter)

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return len(self._heap)

    async def tick(
        self, advance: Callable[[], None], clock: Callable[[], float], max_sleep: float
    ) -> None:
        """Apply due events forever, sleeping until the next one (at most `max_sleep`).

        It sleeps on a bare future rather than `wait_for(Event.wait())`, whose cancellation
        Python 3.11 can swallow (the lifespan must be able to cancel the ticker).
        """
        loop = asyncio.get_running_loop()
        self._stopping = False
        try:
            while not self._stopping:
                try:
                    advance()
                except Exception:  # a bug in one transition must not stop the clock
                    log.exception("emulator: applying due transitions failed")
                next_at = self.next_at()
                self._target = next_at
                delay = max_sleep if next_at is None else max(0.0, next_at - clock())
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiter = waiter
                handle = loop.call_later(min(delay, max_sleep), _release, waiter)
                try:
                    await waiter
                finally:
                    handle.cancel()
                    self._waiter = None
        finally:
            self._target = None


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
