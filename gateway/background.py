"""Background work every replica runs, claiming it through Redis so any replica can die.

- maintenance (`store.tick`): renewals, cooling deadlines, staged timeouts;
- dispatch: staged tasks reserved as slots free (woken at once by a settlement in this replica,
  otherwise every MJGATE_RECONCILE_INTERVAL);
- reconcile: reservations whose lease ran out (no news for MJGATE_LEASE_SECONDS) are checked
  upstream and settled or extended; a reservation whose create never got an answer is failed
  with `upstream_outcome_unknown` rather than re-sent;
- client webhook deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any

from gateway import logs
from gateway.delivery import Outbox
from gateway.errors import GatewayError
from gateway.records import TaskRecord
from gateway.service import TaskService
from routing.decisions import Dropped, Outcome, Reservation
from routing.errors import RoutingError


class Background:
    def __init__(self, service: TaskService, outbox: Outbox, *, interval: float) -> None:
        self.service = service
        self.outbox = outbox
        self.interval = interval
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(self.maintain, None), name="mjgate-maintain"),
            asyncio.create_task(
                self._loop(self.dispatch, self.service.tracker.wake_dispatcher),
                name="mjgate-dispatch",
            ),
            asyncio.create_task(self._loop(self.reconcile, None), name="mjgate-reconcile"),
            asyncio.create_task(self._loop(self.deliver, self.outbox.wake), name="mjgate-deliver"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._inflight:  # let short work (webhook enqueues, forwards) finish first
            await asyncio.wait(list(self._inflight), timeout=5)
        for task in self._inflight:
            task.cancel()
        for task in (*self._tasks, *self._inflight):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background; stop() cancels and awaits whatever is left."""
        task = asyncio.create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _loop(self, work: object, wake: asyncio.Event | None) -> None:
        assert callable(work)
        while True:
            try:
                await work()
            except (RoutingError, GatewayError, OSError) as exc:
                logs.event(
                    "background_error",
                    work=getattr(work, "__name__", "?"),
                    error=f"{type(exc).__name__}: {exc}",
                )
            except Exception:
                logs.exception("background_crash", work=getattr(work, "__name__", "?"))
            if wake is None:
                await asyncio.sleep(self.interval)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.interval)
                wake.clear()

    # -- the passes, callable directly from tests ---------------------------------------------
    async def maintain(self) -> None:
        result = await self.service.store.tick()
        for task_id in result.expired_staged:
            record = await self.service.records.load(task_id)
            if record is not None and record.status == "staged":
                await self.service.tracker.fail(
                    record,
                    "staged_timeout",
                    f"no account was free within {self.service.settings.staged_timeout:g} s",
                )
        for bot_id in result.renewed:
            self.service.metrics.account_event("renewed")
            logs.event("account_renewed", bot_id=bot_id)
        for bot_id in result.woken:
            self.service.metrics.account_event("woken")
            logs.event("account_woken", bot_id=bot_id)
        if result.renewed or result.woken:
            self.service.tracker.wake_dispatcher.set()

    def hand_over(self, items: Sequence[Reservation | Dropped]) -> None:
        """Staged tasks a settle reserved (or dropped) in its own script: forward (or fail)
        each, as the dispatcher does with its own."""
        for item in items:
            if isinstance(item, Dropped):
                self.spawn(self._fail_dropped(item))
            else:
                self.spawn(self._forward_staged(item))

    async def dispatch(self) -> None:
        """Reserve staged tasks that can run now and forward each, concurrently; fail the
        staged children whose parent's account can no longer take them."""
        while True:
            items = await self.service.store.dispatch_staged(
                32, self.service.settings.lease_seconds
            )
            self.hand_over(items)
            if sum(isinstance(item, Reservation) for item in items) < 32:
                return

    async def _fail_dropped(self, dropped: Dropped) -> None:
        record = await self.service.records.load(dropped.task_id)
        if record is not None and record.status == "staged":
            await self.service.tracker.fail(
                record,
                "parent_account_unavailable",
                f"account {dropped.bot_id} can't take child tasks: {dropped.reason}",
            )

    async def _forward_staged(self, reservation: Reservation) -> None:
        record = await self.service.records.load(reservation.task_id)
        for _ in range(50):  # the creating replica writes the record just after staging it
            if record is not None:
                break
            await asyncio.sleep(0.02)
            record = await self.service.records.load(reservation.task_id)
        if record is None:  # its creator died between staging and writing: nothing to send
            await self.service.tracker.release(reservation.task_id)
            return
        try:
            await self.service.forward(record, reservation)
        except GatewayError as exc:
            logs.event("staged_dispatch_failed", task_id=record.task_id, error=exc.type)

    async def reconcile(self) -> None:
        settings = self.service.settings
        claims = await self.service.store.claim_expired_leases(
            100, max(settings.reconcile_interval * 5, 10.0)
        )
        for claim in claims:
            record = await self.service.records.load(claim.task_id)
            if record is None:
                await self.service.tracker.settle(claim.task_id, Outcome.FAILED)
                continue
            await self._reconcile_one(record)

    async def _reconcile_one(self, record: TaskRecord) -> None:
        service = self.service
        if not record.upstream_id:
            # The create may or may not have reached the upstream: never re-send blindly.
            await service.tracker.release(record.task_id)
            if not record.terminal:
                await service.tracker.fail(
                    record,
                    "upstream_outcome_unknown",
                    "the upstream never confirmed this task; it was not re-sent",
                )
            return
        if record.terminal:
            outcome = Outcome.COMPLETED if record.status == "completed" else Outcome.FAILED
            await service.tracker.settle(record.task_id, outcome)
            return
        answer = await service.upstream.get(record.upstream_id)
        service.metrics.upstream_request("get", str(answer.status), answer.seconds)
        if answer.status == 200 and answer.task:
            await service.tracker.apply_upstream_task(record, answer.task)
        elif answer.status == 404:
            await service.tracker.release(record.task_id)
            await service.tracker.fail(
                record, "upstream_lost", "the upstream no longer knows this task"
            )

    async def deliver(self) -> None:
        while await self.outbox.run_once() > 0:
            pass
