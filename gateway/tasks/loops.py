"""The background loops every replica runs. They hold no logic of their own: each drains a
queue or runs one pass of a component, and keeps running whatever a pass raises.

- check: the completion tracker (`Checker.check_due`), woken for the earliest next check;
- reconcile: reservations whose lease ran out (`Checker.reconcile`);
- upkeep: renewals, cooling deadlines, staged timeouts (`Checker.upkeep`), and the upstream's
  pause another replica was told of (`UpstreamBackoff.refresh`);
- sweep: open tasks nothing holds any more (`Sweeper.sweep`), every MJGATE_SWEEP_INTERVAL;
- dispatch: staged tasks reserved as slots free (`PoolStore.dispatch_staged`), put in the
  Handoff; woken at once when a settle asks, at the next pacing change while work is staged
  (a gap's end, a window's edge: before a fresh create can take the account), otherwise
  every MJGATE_RECONCILE_INTERVAL;
- handoff: the Handoff's reserved staged tasks sent (`Sender.send_staged`), dropped ones failed
  (`Tracker.drop`), each in its own task;
- deliver: changed records put in the client webhook outbox, and the outbox's due deliveries.

A Redis outage is logged once when it starts and once when it ends, not once a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from gateway import logs
from gateway.errors import GatewayError
from gateway.tasks.checking import Checker
from gateway.tasks.handoff import Handoff
from gateway.tasks.sending import Sender
from gateway.tasks.sweeping import Sweeper
from gateway.tasks.tracking import Tracker
from gateway.webhooks.outbound import Outbox
from routing.errors import RoutingError, StoreError
from routing.results import Dropped, Reservation
from routing.schedule import CheckSchedule
from routing.store import PoolStore

DISPATCH_BATCH = 32  # staged tasks reserved per dispatch call


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again while one runs on: a
    cancellation can be lost inside a library (a timeout firing as it arrives turns it into
    a timeout error, which a loop then treats as an outage and carries on), and a shutdown
    must not wait forever for it. Measured: a lifespan shut down during a Redis call hung
    until an outer timeout, one time in four."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a task that ended on an error is not "never retrieved"


class Loops:
    def __init__(
        self,
        *,
        store: PoolStore,
        schedule: CheckSchedule,
        checker: Checker,
        sweeper: Sweeper,
        sender: Sender,
        tracker: Tracker,
        handoff: Handoff,
        outbox: Outbox,
        interval: float,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.schedule = schedule
        self.checker = checker
        self.sweeper = sweeper
        self.sender = sender
        self.tracker = tracker
        self.handoff = handoff
        self.outbox = outbox
        self.interval = interval
        self.lease_seconds = lease_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._outage: set[str] = set()
        self._due_seen: float | None = None  # a due pacing change dispatch_delay has met

    def start(self) -> None:
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "check": lambda: self._loop("check", self.check, self._until_next_check),
            "reconcile": lambda: self._loop("reconcile", self.checker.reconcile, self._sleep),
            "upkeep": lambda: self._loop("upkeep", self.upkeep, self._sleep),
            "sweep": lambda: self._loop("sweep", self.sweeper.sweep, self._sweep_wait),
            "dispatch": lambda: self._loop("dispatch", self.dispatch, self._dispatch_wanted),
            "deliver": lambda: self._loop("deliver", self.deliver, self._deliveries),
            "handoff": self._drain_handoff,
            "changes": self._drain_changes,
        }
        self._tasks = [
            asyncio.create_task(run(), name=f"mjgate-{name}") for name, run in loops.items()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._inflight:  # let short work (sends of staged tasks) finish first
            await asyncio.wait(list(self._inflight), timeout=5)
        await cancel_and_wait(*self._tasks, *self._inflight)
        self._tasks = []

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _loop(self, name: str, work: Callable[[], Awaitable[Any]], wait: Any) -> None:
        while True:
            try:
                await work()
                if name in self._outage:
                    self._outage.discard(name)
                    logs.event("background_recovered", work=name)
            except (StoreError, RedisError) as exc:  # redis-py's, from the outbox's client
                if name not in self._outage:  # once per outage, not once per pass
                    self._outage.add(name)
                    logs.event("background_store_unavailable", work=name, error=str(exc))
            except (RoutingError, GatewayError, OSError) as exc:
                logs.event("background_error", work=name, error=f"{type(exc).__name__}: {exc}")
            except Exception:
                logs.exception("background_crash", work=name)
            await wait()

    # -- waits ------------------------------------------------------------------------------
    async def _sleep(self) -> None:
        await asyncio.sleep(self.interval)

    async def _sweep_wait(self) -> None:
        await asyncio.sleep(self.sweeper.every)

    async def _wait_for(self, event: asyncio.Event, timeout: float) -> None:
        # asyncio.timeout, not wait_for: wait_for can swallow a cancellation that arrives as
        # the event is set, and stop() would then wait forever for this loop
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await event.wait()
        event.clear()

    async def _dispatch_wanted(self) -> None:
        """Until a settle asks, an interval passes, or (work staged) the next pacing change is
        due: a gap's end or a window's edge frees an account for the queue first."""
        await self._wait_for(self.handoff.dispatch_wanted, await self.dispatch_delay())

    async def dispatch_delay(self) -> float:
        """How long the dispatch loop waits. A change already due that the last dispatch
        did not apply (more changes due at once than one applies, a failing script) is looked
        at again shortly once, then at the interval: never a busy loop."""
        try:
            change = await self.store.next_pacing_change()
        except StoreError:
            change = None
        if change is None:
            return self.interval
        wait = change - self.store.clock() + 0.001
        if wait > 0:
            return min(self.interval, wait)
        if change == self._due_seen:
            return self.interval
        self._due_seen = change
        return min(self.interval, 0.05)

    async def _deliveries(self) -> None:
        await self._wait_for(self.outbox.wake, self.interval)

    async def _until_next_check(self) -> None:
        """Sleep until the earliest next check (at most an interval: other replicas add
        tasks too), or not at all when the last pass was full."""
        if self._check_full:
            return
        try:
            due = await self.schedule.next_due()
        except StoreError:
            due = None
        now = self.schedule.clock()
        delay = min(self.interval, max(0.005, self.interval if due is None else due - now))
        self.schedule.planned_wake = now + delay  # a check scheduled sooner wakes the loop
        self.schedule.wake.clear()
        await self._wait_for(self.schedule.wake, delay)
        self.schedule.planned_wake = float("inf")

    # -- passes -----------------------------------------------------------------------------
    _check_full = False

    async def upkeep(self) -> None:
        """The maintenance tick, then the upstream's pause another replica may have heard."""
        await self.checker.upkeep()
        await self.sender.backoff.refresh()

    async def check(self) -> None:
        claimed = await self.checker.check_due()
        self._check_full = claimed >= self.checker.settings.track_concurrency

    async def dispatch(self) -> None:
        while True:
            items = await self.store.dispatch_staged(DISPATCH_BATCH, self.lease_seconds)
            self.handoff.hand_over(items)
            if sum(isinstance(item, Reservation) for item in items) < DISPATCH_BATCH:
                return

    async def deliver(self) -> None:
        while await self.outbox.run_once() > 0:
            pass

    async def _drain_handoff(self) -> None:
        while True:
            item = await self.handoff.dispatched.get()
            if isinstance(item, Dropped):
                self._spawn(self._guard("drop", self.tracker.drop(item)))
            else:
                self._spawn(self._guard("send_staged", self.sender.send_staged(item)))

    async def _drain_changes(self) -> None:
        while True:
            record = await self.handoff.changed.get()
            await self._guard("outbox", self.outbox.enqueue(record))

    async def _guard(self, name: str, work: Awaitable[None]) -> None:
        started = time.monotonic()
        try:
            await work
        except (RoutingError, GatewayError, OSError) as exc:
            logs.event("background_error", work=name, error=f"{type(exc).__name__}: {exc}",
                       seconds=round(time.monotonic() - started, 3))  # fmt: skip
        except Exception:
            logs.exception("background_crash", work=name)
