"""After a task is sent: what mjgate learns about it, and how it ends (DESIGN.md section 4).

News comes from GoAPI's webhook, a client's GET (`refresh`) or the reconciler
(`gateway.background`); `apply_upstream_task` records it, and the first terminal news settles
the reservation, exactly once (the store guarantees it), handing the freed slot to the oldest
staged tasks that fit it in the same script (`on_dispatched` forwards them). Endings mjgate
decides itself (`fail`: staged timeout, upstream refusal, lost outcome; `cancel`) and accounts
the upstream refused for (`account_refused`) are here too. `on_change` is called with every
record whose client-visible state changed (client webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from gateway import logs
from gateway.errors import TaskNotCancellableError, UpstreamRejectedError
from gateway.forwarding import Refusal
from gateway.metrics import Metrics
from gateway.records import RecordStore, TaskRecord
from gateway.settings import Settings
from gateway.upstream import UpstreamClient
from routing.decisions import Dropped, Outcome, Reservation, Settlement
from routing.model import AccountState
from routing.store import PoolStore

_COOLDOWN = {Refusal.BANNED: 3600.0, Refusal.BUSY: 30.0}
SETTLE_DISPATCH = 4  # staged tasks one settle may hand the freed slot(s) to at once


class TaskTracker:
    def __init__(
        self,
        settings: Settings,
        *,
        store: PoolStore,
        records: RecordStore,
        upstream: UpstreamClient,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.upstream = upstream
        self.metrics = metrics
        self.clock = clock
        self.wake_dispatcher = asyncio.Event()
        self.on_change: Callable[[TaskRecord], None] = lambda record: None
        # Who forwards the staged tasks a settle hands its slot to (the app's Background).
        # Until one is set, settles hand nothing over (a reservation nobody forwards would
        # hold its slot until its lease ran out) and wake the dispatcher instead.
        self.on_dispatched: Callable[[Sequence[Reservation | Dropped]], None] | None = None

    async def account_refused(self, bot_id: int, refusal: Refusal, message: str) -> None:
        reason = f"upstream: {refusal.value}"
        if refusal is Refusal.NO_FAST_TIME:
            await self.store.set_fast_time(bot_id, 0, reason=reason)
            self.metrics.account_event("fast_time_exhausted")
        elif refusal is Refusal.CAPTCHA:
            await self.store.set_state(bot_id, AccountState.PAUSED, reason=reason)
            self.metrics.account_event("paused")
        elif refusal is Refusal.EXPIRED:
            await self.store.set_state(bot_id, AccountState.DISABLED, reason=reason)
            self.metrics.account_event("disabled")
        else:
            until = self.clock() + _COOLDOWN.get(refusal, 60.0)
            await self.store.set_state(bot_id, AccountState.COOLING, until=until, reason=reason)
            self.metrics.account_event("cooled")
        logs.event("account_refused", bot_id=bot_id, refusal=refusal.value, message=message[:200])

    async def fail(self, record: TaskRecord, error_type: str, message: str) -> TaskRecord:
        """End a task mjgate itself decided about (staged timeout, cancel of a staged task,
        upstream refusals, lost outcomes) as `failed` with `error.type`."""
        record = record.evolve(
            status="failed",
            error_type=error_type,
            error_message=message,
            updated_at=self.clock(),
        ).with_event("failed", error_type=error_type)
        await self.records.save(record)
        status = "cancelled" if error_type == "cancelled" else "failed"
        self.metrics.task_finished(record.task_type, record.mode or "none", status, None)
        self.on_change(record)
        return record

    async def release(self, task_id: str) -> None:
        await self.settle(task_id, Outcome.FAILED)

    def settle(self, task_id: str, outcome: Outcome) -> Coroutine[Any, Any, Settlement | None]:
        """End a reservation (sent when called) and, in the same script, hand the freed slot
        to the staged tasks that fit it; those go to `on_dispatched` to be forwarded. None
        when there was no reservation (settled already)."""
        pending = self.store.settle(
            task_id,
            outcome,
            dispatch=SETTLE_DISPATCH if self.on_dispatched else 0,
            lease_seconds=self.settings.lease_seconds,
        )
        return self._settled(pending)

    async def _settled(self, pending: Awaitable[Settlement | None]) -> Settlement | None:
        settlement = await pending
        if settlement is None:
            return None
        if self.on_dispatched is None:
            self.wake_dispatcher.set()
        elif settlement.dispatched:
            self.on_dispatched(settlement.dispatched)
            reserved = sum(isinstance(item, Reservation) for item in settlement.dispatched)
            if reserved >= SETTLE_DISPATCH:  # more may fit: let the dispatcher look
                self.wake_dispatcher.set()
        return settlement

    # -- news about a task --------------------------------------------------------------------
    async def apply_upstream_task(self, record: TaskRecord, task: dict[str, Any]) -> TaskRecord:
        """Record the upstream's latest view of a task; settle it when it is terminal."""
        status = str(task.get("status") or record.status)
        changed = status != record.status or task != record.task
        record = record.evolve(task=task, status=status, updated_at=self.clock())
        if record.terminal:
            record = record.with_event(status)
            await self.settle_terminal(record)
            return record
        if await self.records.save_unless_terminal(record):
            await self.store.extend_lease(record.task_id, self.settings.lease_seconds)
            if changed:
                self.on_change(record)
            return record
        reloaded = await self.records.load(record.task_id)
        return reloaded or record

    async def settle_terminal(self, record: TaskRecord) -> None:
        """Save a finished task's record unless one is already terminal, and settle its
        reservation: exactly once, whoever reports it. Both go in one round trip, in that
        order (a reader never sees the slot free before the record is final)."""
        outcome = Outcome.COMPLETED if record.status == "completed" else Outcome.FAILED
        saving = self.records.save_unless_terminal(record)
        settling = self.settle(record.task_id, outcome)
        try:
            saved = await saving
        except BaseException:
            with contextlib.suppress(Exception):
                await settling  # sent anyway: the upstream's task is over either way
            raise
        settlement = await settling
        if settlement is not None:
            duration = self.clock() - record.created_at if record.created_at else None
            self.metrics.task_finished(
                record.task_type, record.mode or "none", record.status, duration
            )
            logs.event(
                "task_settled",
                task_id=record.task_id,
                bot_id=record.bot_id,
                mode=record.mode,
                status=record.status,
                refunded=settlement.refunded,
            )
        if saved:
            self.on_change(record)

    async def refresh(self, record: TaskRecord, *, force: bool = False) -> TaskRecord:
        """A client's GET: served from the record unless it is older than the stale limit."""
        if record.terminal or not record.upstream_id:
            return record
        if not force and self.clock() - record.updated_at < self.settings.poll_stale_seconds:
            return record
        answer = await self.upstream.get(record.upstream_id)
        self.metrics.upstream_request("get", str(answer.status), answer.seconds)
        if answer.status == 200 and answer.task:
            return await self.apply_upstream_task(record, answer.task)
        return record

    # -- cancel -------------------------------------------------------------------------------
    async def cancel(self, record: TaskRecord) -> str:
        if record.status == "staged":
            if await self.store.cancel_staged(record.task_id):
                await self.fail(record, "cancelled", "task canceled")
                return f"task {record.task_id} canceled"
            record = await self.records.load(record.task_id) or record
        if record.terminal or not record.upstream_id:
            raise TaskNotCancellableError(
                f"task {record.task_id} is {record.status}; only pending tasks can be canceled"
            )
        answer = await self.upstream.cancel(record.upstream_id)
        self.metrics.upstream_request("cancel", str(answer.status), answer.seconds)
        if answer.status != 200:
            raise UpstreamRejectedError(
                answer.status, answer.message, upstream_status=answer.status
            )
        record = record.evolve(
            status="failed",
            error_type="cancelled",
            error_message="task canceled",
            updated_at=self.clock(),
        )
        await self.records.save(record)
        if await self.settle(record.task_id, Outcome.CANCELLED) is not None:
            self.metrics.task_finished(record.task_type, record.mode or "none", "cancelled", None)
        self.on_change(record)
        return f"task {record.task_id} canceled"
