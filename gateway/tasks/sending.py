"""Sender: a reserved task goes upstream, with one retry path.

The create body is the client's input with `bot_id` and the effective mode set
(`upstream_body`). When the upstream refuses for the account's sake (banned, captcha, expired,
no fast time, an account it doesn't know) or was certainly never reached, the reservation is
released at once, the account updated (`AccountRefusals.refused`), and the task reserved again
on another account (`gateway.tasks.rerouting`). An account-level refusal is never passed on as
the client's error.

What is never retried: a refusal about the request itself (passed on, 4xx), a 5xx (about GoAPI,
not an account: released, `upstream_unavailable`; gateway.tasks.refusals), and an answer that
may mean the task exists upstream (a timeout after sending, the upstream front's own 504, a 2xx
without a task): the reservation is then kept, the record marked `unknown`, and the reconciler
ends it (`upstream_outcome_unknown`) once its lease runs out: a task is never sent twice.

A 429 is about the GoAPI key: no account is touched; creates are refused for the
`Retry-After` the upstream asked (the replicas' shared backoff) before anything is reserved; a
503 with `Retry-After` (GoAPI down for that long) pauses creates the same way.

A task is sent only inside its reservation's lease, with room for the whole send
(`gateway.tasks.leasing`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway import logs
from gateway.errors import (
    GatewayError,
    UpstreamInvalidAnswerError,
    UpstreamNotSentError,
    UpstreamRateLimitedError,
    UpstreamTimeoutError,
)
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.taskrecord import TaskRecord, TaskStatus
from gateway.tasks.backoff import Pause, UpstreamBackoff
from gateway.tasks.body import decision_of, upstream_body
from gateway.tasks.leasing import LeaseGuard
from gateway.tasks.refusals import (
    ACCOUNT_REFUSALS,
    AccountRefusals,
    Refusal,
    classify,
    passed_on,
    retry_after,
)
from gateway.tasks.rerouting import Rerouter
from gateway.tasks.tracking import Tracker
from gateway.upstream import UpstreamClient
from routing.durations import CheckPlan
from routing.errors import RoutingError, StoreError
from routing.results import Reservation
from routing.schedule import CheckSchedule

UNKNOWN = TaskStatus.UNKNOWN  # sent; whether the upstream has the task is not known
DEFAULT_RETRY_AFTER = 10.0  # seconds of backoff after a 429 without Retry-After
GATEWAY_TIMEOUT_MESSAGE = (
    "the upstream's own front timed out waiting for it (a gateway timeout); the task may or "
    "may not have been created, and mjgate will not send it again"
)
T = TypeVar("T")


def count_created(metrics: Metrics, record: TaskRecord) -> None:
    metrics.task_created(
        record.task_type, record.requested_mode or "inherit", record.mode or "none",
        record.decision)  # fmt: skip
    logs.event("task_created", task_id=record.task_id, task_type=record.task_type,
               requested_mode=record.requested_mode, mode=record.mode, bot_id=record.bot_id,
               decision=record.decision, status=record.status)  # fmt: skip


class Sender:
    def __init__(
        self,
        *,
        records: RecordStore,
        schedule: CheckSchedule,
        upstream: UpstreamClient,
        metrics: Metrics,
        tracker: Tracker,
        refusals: AccountRefusals,
        rerouter: Rerouter,
        webhook: dict[str, str] | None,
        patience: float,
        lease_guard: LeaseGuard,
        backoff: UpstreamBackoff,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.schedule = schedule
        self.upstream = upstream
        self.metrics = metrics
        self.tracker = tracker
        self.refusals = refusals
        self.rerouter = rerouter
        self.webhook = webhook  # mjgate's own webhook for GoAPI, None without a public URL
        self.patience = patience  # seconds a handed-over task waits for Redis before sending
        self.lease_guard = lease_guard
        self.clock = clock
        self.backoff = backoff  # the upstream's rate limit, shared by replicas

    def check_backoff(self) -> None:
        """Raise before anything is reserved while the upstream asked mjgate to back off."""
        self.backoff.check()

    # -- sending ----------------------------------------------------------------------------
    async def send_staged(self, reservation: Reservation) -> None:
        """Send a staged task a settle or the dispatcher reserved (its record was written
        before it was staged). Its record and its parent's are read patiently: Redis may be
        failing over right after the script that reserved it, and a task given up before it
        was sent would be failed as `upstream_outcome_unknown` by the reconciler."""
        record = await self._patiently(lambda: self.records.load(reservation.task_id))
        if record is None:  # expired meanwhile: nobody to send it for
            await self.tracker.release(reservation.task_id)
            return
        parent_id = record.parent_id
        parent = await self._patiently(lambda: self.records.load(parent_id)) if parent_id else None
        wait = self.backoff.remaining()
        if wait > 0:  # hold the slot: the upstream asked for a pause, not for another account
            await asyncio.sleep(wait)
        try:
            await self.send(record, reservation, parent=parent)
        except (GatewayError, RoutingError) as exc:
            logs.event("staged_dispatch_failed", task_id=record.task_id, error=type(exc).__name__)

    async def _patiently(self, call: Callable[[], Awaitable[T]]) -> T:
        """A Redis call around sending a reserved task (reading its record before, writing its
        upstream id after), made again while Redis fails, for `patience` seconds at most (well
        inside the reservation's lease): a failover is seconds, and a task given up on here
        would be failed by the reconciler as `upstream_outcome_unknown`."""
        deadline = time.monotonic() + self.patience
        delay = 0.05
        while True:
            try:
                return await call()
            except StoreError:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def send(
        self,
        record: TaskRecord,
        reservation: Reservation,
        *,
        parent: TaskRecord | None = None,
        timings: dict[str, float] | None = None,
    ) -> TaskRecord:
        """Send a reserved task upstream, moving to another account while the upstream
        refuses for the account or was never reached. Raises the client's error; nothing
        stays reserved unless the task may exist upstream. `timings["upstream"]` adds up the
        upstream calls' seconds."""
        if parent is None and record.parent_id:
            parent = await self.records.load(record.parent_id)
        try:
            return await self._send(record, reservation, parent, timings)
        except (GatewayError, RoutingError):
            raise
        except Exception:  # a bug must not hold a slot until the lease runs out
            await self.tracker.release(record.task_id)
            await self.tracker.fail(record, "internal_error", "mjgate failed to send the task")
            raise

    async def _send(
        self,
        record: TaskRecord,
        reservation: Reservation,
        parent: TaskRecord | None,
        timings: dict[str, float] | None,
    ) -> TaskRecord:
        parent_mode = parent.mode if parent else None
        attempts = 0
        while True:
            attempts += 1
            record = record.evolve(
                status=TaskStatus.RESERVED,
                bot_id=reservation.bot_id,
                mode=reservation.mode.value,
                decision=decision_of(record, reservation, parent_mode),
            )
            body = upstream_body(
                record,
                reservation,
                parent_upstream_id=parent.upstream_id if parent else None,
                parent_mode=parent_mode,
                webhook=self.webhook,
            )
            plan = await self.schedule.plan(record.task_type, reservation.mode.value)
            await self.lease_guard.before_send(record, reservation)
            sent_at = self.clock()
            refusal: Refusal | None = None
            try:
                answer = await self.upstream.create(body)
            except UpstreamNotSentError:
                self.metrics.upstream_request("create", "not_sent", None)
            except UpstreamTimeoutError as exc:
                self.metrics.upstream_request("create", "timeout", None)
                await self.records.save(record.evolve(status=UNKNOWN).with_event("timeout"))
                self._unconfirmed(record, "timeout")
                exc.details["task_id"] = record.task_id  # the client can follow it
                raise
            else:
                self.metrics.upstream_request("create", str(answer.status), answer.seconds)
                if timings is not None:
                    timings["upstream"] = timings.get("upstream", 0.0) + answer.seconds
                task = answer.task
                if 200 <= answer.status < 300:
                    if task and isinstance(task.get("task_id"), str):
                        return await self._sent(record, reservation, task, sent_at, plan)
                    await self.records.save(record.evolve(status=UNKNOWN).with_event("unclear"))
                    raise UpstreamInvalidAnswerError(answer.status)
                refusal = classify(answer)
                if refusal is Refusal.GATEWAY_TIMEOUT:  # as a read timeout: it may exist
                    unclear = record.evolve(status=UNKNOWN)
                    await self.records.save(unclear.with_event("timeout", status=answer.status))
                    self._unconfirmed(record, f"upstream {answer.status}")
                    raise UpstreamTimeoutError(
                        GATEWAY_TIMEOUT_MESSAGE,
                        upstream_status=answer.status,
                        task_id=record.task_id,
                    )
                if refusal is Refusal.UPSTREAM_FAILED:  # a 5xx: it may have run, count it
                    await self.tracker.release(record.task_id)
                else:  # refused: it never ran, its daily-cap count given back
                    await self.tracker.unsent(record.task_id)
                if refusal is Refusal.RATE_LIMITED:
                    wait = retry_after(answer, DEFAULT_RETRY_AFTER, self.clock())
                    await self.backoff.pause(wait)
                    await self.tracker.fail(record, "upstream_rate_limited", answer.message)
                    raise UpstreamRateLimitedError(round(wait))
                if refusal not in ACCOUNT_REFUSALS:  # the request's, or a 5xx: not retried
                    error = passed_on(answer, refusal, self.clock())
                    if answer.status == 503 and "retry-after" in answer.headers:
                        await self.backoff.pause(error.details["retry_after"], Pause.DOWN)
                    await self.tracker.fail(record, error.type, answer.message)
                    raise error
                await self.refusals.refused(reservation.bot_id, refusal, answer.message)
            if refusal is None:  # never reached: it never ran
                await self.tracker.unsent(record.task_id)
            next_one = await self.rerouter.another_account(record, parent, attempts, refusal)
            if isinstance(next_one, TaskRecord):
                return next_one
            reservation = next_one

    @staticmethod
    def _unconfirmed(record: TaskRecord, why: str) -> None:
        """A create that may exist upstream, holding its slot until the reconciler knows."""
        logs.event("task_unconfirmed", logging.WARNING, task_id=record.task_id,
                   bot_id=record.bot_id, why=why)  # fmt: skip

    async def _sent(
        self,
        record: TaskRecord,
        reservation: Reservation,
        task: dict[str, Any],
        sent_at: float,
        plan: CheckPlan,
    ) -> TaskRecord:
        now = self.clock()
        record = await self.tracker.mode_used(record, task)  # an account out of fast time
        record = record.evolve(
            upstream_id=task["task_id"],
            status=TaskStatus(task.get("status") or TaskStatus.PENDING),
            task=task,
            updated_at=now,
            sent_at=sent_at,
            running_at=sent_at,
            expected_end=sent_at + plan.first,
        ).with_event(
            "sent", bot_id=reservation.bot_id, mode=reservation.mode.value, decision=record.decision
        )
        if record.terminal:  # an upstream that answers with a finished task
            await self.tracker.finish(record, source="create")
        else:  # the upstream has it: its id must not be lost to a failover (read patiently)
            await self._patiently(
                lambda: asyncio.gather(
                    self.records.save(record),
                    self.schedule.add(record.task_id, record.expected_end),
                )
            )
        if reservation.staged:  # counted as created when it was staged
            logs.event("task_dispatched", task_id=record.task_id, bot_id=record.bot_id,
                       mode=record.mode, decision=record.decision)  # fmt: skip
        else:
            count_created(self.metrics, record)
        self.tracker.handoff.change(record)
        return record
