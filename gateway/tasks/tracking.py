"""Tracker: what mjgate learns about a sent task, and every way a task ends.

News comes from GoAPI's webhook, a client's GET or the completion tracker (the last two
through `gateway.tasks.checking`); `apply` records it. The first terminal news settles the
reservation, exactly once (the settle script guarantees it): the slot is freed, fast time kept
or refunded, the task leaves the completion-check schedule, and the freed slot goes to the
oldest staged tasks that fit it, in the same script; those are put in the Handoff for the
loops to send. News that the task still runs moves its next check later.

The endings mjgate decides itself are here too, each with its `error.type`: `fail` (the
sender's refusals, a lost outcome, a staged timeout, a cancelled staged task), `lose` (the
upstream no longer knows the task), `outcome_unknown` (a create sent but never confirmed),
`drop` (a staged child whose parent's account can no longer take it); a client's cancel is
`gateway.tasks.cancelling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from gateway import logs
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord, TaskStatus
from gateway.tasks.handoff import Handoff
from gateway.upstream import UpstreamClient
from routing.durations import bracket
from routing.errors import StoreError
from routing.results import Dropped, Outcome, Reservation, Settlement
from routing.schedule import CheckSchedule
from routing.store import PoolStore

SETTLE_DISPATCH = 4  # staged tasks one settle may hand the freed slot(s) to at once
WEBHOOK = "webhook"  # the news source whose arrival time is the task's end, to within a hop


def upstream_end(task: dict[str, Any]) -> float | None:
    """The upstream's `meta.ended_at` (whole seconds) as unix seconds, None if unset."""
    meta = task.get("meta")
    raw = meta.get("ended_at") if isinstance(meta, dict) else None
    if not isinstance(raw, str) or raw.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


class Tracker:
    def __init__(
        self,
        settings: Settings,
        *,
        store: PoolStore,
        records: RecordStore,
        schedule: CheckSchedule,
        upstream: UpstreamClient,
        metrics: Metrics,
        handoff: Handoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.schedule = schedule
        self.upstream = upstream
        self.metrics = metrics
        self.handoff = handoff
        self.clock = clock

    # -- settling ---------------------------------------------------------------------------
    def settle(self, task_id: str, outcome: Outcome) -> Coroutine[Any, Any, Settlement | None]:
        """End a reservation (sent when called) and, in the same script, hand the freed slot
        to the staged tasks that fit it (into the Handoff). None when there was none."""
        pending = self.store.settle(
            task_id,
            outcome,
            dispatch=SETTLE_DISPATCH,
            lease_seconds=self.settings.lease_seconds,
        )
        return self._settled(pending)

    async def _settled(self, pending: Awaitable[Settlement | None]) -> Settlement | None:
        settlement = await pending
        if settlement is None:
            return None
        self.handoff.hand_over(settlement.dispatched)
        reserved = sum(isinstance(item, Reservation) for item in settlement.dispatched)
        if reserved >= SETTLE_DISPATCH:  # more may fit: let the dispatcher look
            self.handoff.dispatch_soon()
        return settlement

    async def release(self, task_id: str) -> None:
        await self.settle(task_id, Outcome.FAILED)

    async def unsent(self, task_id: str) -> None:
        """The upstream refused the task's create (it never ran): its reservation released,
        its count toward the account's daily cap given back."""
        await self.settle(task_id, Outcome.REFUSED)

    # -- news -------------------------------------------------------------------------------
    async def mode_used(self, record: TaskRecord, task: dict[str, Any]) -> TaskRecord:
        """A task reserved fast or turbo that the upstream says it ran relax
        (`meta.process_mode`, the mode actually used): its account is out of fast time and
        GoAPI switched it to relax. The reservation moves to a relax slot and gives its fast
        time back, the account takes no more fast work (`run_relax.lua`), and the record says
        relax. Once per task: the record's mode is relax after."""
        meta = task.get("meta")
        used = meta.get("process_mode") if isinstance(meta, dict) else None
        if record.mode not in ("fast", "turbo") or str(used).strip().lower() != "relax":
            return record
        await self.store.run_relax(record.task_id)
        self.metrics.account_event("ran_relax")
        logs.event("task_ran_relax", logging.WARNING, task_id=record.task_id,
                   bot_id=record.bot_id, reserved=record.mode)  # fmt: skip
        return record.evolve(mode="relax").with_event("ran_relax", reserved=record.mode)

    async def apply(self, record: TaskRecord, task: dict[str, Any], *, source: str) -> TaskRecord:
        """Record the upstream's latest view of a task; settle it when it is terminal."""
        record = await self.mode_used(record, task)
        now = self.clock()
        status = TaskStatus(task.get("status") or record.status)
        changed = status != record.status or task != record.task
        record = record.evolve(task=task, status=status, updated_at=now)
        if record.terminal:
            record = record.with_event(status, source=source)
            await self.finish(record, source=source)
            return record
        record = record.evolve(running_at=now)
        if source == WEBHOOK:  # webhooks reach mjgate for this task: poll it only if they stop
            later = max(now, record.expected_end) + self.settings.track_webhook_grace
            scheduling = self.schedule.later(record.task_id, later)
        else:  # found running: the next check from what is learnt by now (see CheckPlan)
            plan = await self.schedule.plan(record.task_type, record.mode)
            at = record.sent_at + plan.next_check(now - record.sent_at, self.schedule.interval)
            scheduling = self.schedule.at(record.task_id, at)
        saved, _, _ = await asyncio.gather(
            self.records.save_unless_terminal(record),
            self.store.extend_lease(record.task_id, self.settings.lease_seconds),
            scheduling,
        )
        if saved:
            if changed:
                self.handoff.change(record)
            return record
        return await self.records.load(record.task_id) or record

    async def finish(self, record: TaskRecord, *, source: str) -> None:
        """Save a finished task's record unless one is already terminal, and settle its
        reservation: exactly once, whoever reports it. Both go in one round trip, in that
        order (a reader never sees the slot free before the record is final)."""
        outcome = record.outcome
        saving = self.records.save_unless_terminal(record)
        settling = self.settle(record.task_id, outcome)
        closing = self.records.closed(record.client_id, record.task_id)
        try:
            saved = await saving
        except BaseException:
            for reply in (settling, closing):  # sent anyway: the task is over either way
                with contextlib.suppress(Exception):
                    await reply
            raise
        with contextlib.suppress(StoreError):  # the index is advisory (the batch cancel)
            await closing
        settlement = await settling
        if settlement is not None:
            await self._settled_news(record, source, settlement)
        if saved:
            self.handoff.change(record)

    async def _settled_news(self, record: TaskRecord, source: str, settled: Settlement) -> None:
        now = self.clock()
        mode = record.mode or "none"
        duration = now - record.created_at if record.created_at else None
        self.metrics.task_finished(record.task_type, mode, record.status, duration)
        if record.sent_at:
            news_at = record.updated_at or now
            running_at = max(record.running_at, record.sent_at)
            ended = upstream_end(record.task or {})
            if source == WEBHOOK:  # the webhook's arrival is the end, to within a hop
                known = news_at
                took = (news_at - record.sent_at, news_at - record.sent_at)
            else:
                known = min(news_at, max(running_at, ended or 0.0))
                took = bracket(
                    sent_at=record.sent_at,
                    news_at=news_at,
                    running_at=running_at,
                    upstream_end=ended,
                )
            self.metrics.task_tracked(source, max(0.0, now - known), record.gets)
            if record.status == TaskStatus.COMPLETED and record.mode:
                await self.schedule.learn(record.task_type, record.mode, took)
        logs.event(
            "task_settled",
            task_id=record.task_id,
            bot_id=record.bot_id,
            mode=record.mode,
            status=record.status,
            source=source,
            refunded=settled.refunded,
        )

    # -- endings mjgate decides -------------------------------------------------------------
    async def fail(
        self, record: TaskRecord, error_type: str, message: str, *, only_if: str = ""
    ) -> bool:
        """End a task as `failed` with `error.type` (its reservation, if any, is the
        caller's to settle). `only_if`: only if the stored record's status is still that
        one; False, and nothing done, when it is not."""
        record = record.evolve(
            status=TaskStatus.FAILED,
            error_type=error_type,
            error_message=message,
            updated_at=self.clock(),
        ).with_event("failed", error_type=error_type)
        if only_if:
            if not await self.records.save_if(record, only_if):
                return False
            await self.records.closed(record.client_id, record.task_id)
        else:
            await asyncio.gather(
                self.records.save(record), self.records.closed(record.client_id, record.task_id)
            )
        ended = Outcome.CANCELLED if error_type == "cancelled" else Outcome.FAILED
        self.metrics.task_finished(record.task_type, record.mode or "none", ended, None)
        if error_type != "cancelled":  # a cancel logs task_cancelled
            logs.event("task_failed", task_id=record.task_id, bot_id=record.bot_id,
                       error=error_type, upstream_id=record.upstream_id)  # fmt: skip
        self.handoff.change(record)
        return True

    async def lose(self, record: TaskRecord) -> None:
        """The upstream no longer knows a task it accepted."""
        await self.release(record.task_id)
        await self.fail(record, "upstream_lost", "the upstream no longer knows this task")

    async def outcome_unknown(self, record: TaskRecord) -> None:
        """A create was sent (or may have been) and never confirmed: never re-sent blindly."""
        await self.release(record.task_id)
        if not record.terminal:
            await self.fail(
                record,
                "upstream_outcome_unknown",
                "the upstream never confirmed this task; it was not re-sent",
            )

    async def staged_timeout(self, task_id: str) -> None:
        record = await self.records.load(task_id)
        if record is not None and record.status == TaskStatus.STAGED:
            waited = self.settings.staged_timeout
            why = next((str(e.get("reason", "")) for e in reversed(record.history)
                        if e.get("what") == "staged"), "")  # fmt: skip
            message = (f"staged by pacing ({why}) and not dispatched within {waited:g} s: no "
                       "account it could run on was allowed to take it" if why.startswith("paced:")
                       else f"no account was free within {waited:g} s")  # fmt: skip
            await self.fail(record, "staged_timeout", message)

    async def drop(self, dropped: Dropped) -> None:
        """A staged child whose parent's account can never take it (removed, disabled)."""
        record = await self.records.load(dropped.task_id)
        if record is not None and record.status == TaskStatus.STAGED:
            await self.fail(
                record,
                "parent_account_unavailable",
                f"account {dropped.bot_id} can't take child tasks: {dropped.reason}",
            )
