"""Canceller: a client's cancel of one task (`DELETE /api/v1/task/{id}`) and the batch cancel.

A staged task is taken out of the queue (nothing was sent); a pending one is cancelled upstream
(GoAPI allows it only while pending) and its reservation settled with a refund; a task being
sent (taken from the queue by a settle or the dispatcher, or a create still waiting for the
upstream's answer) is waited for up to CANCEL_WAIT, then cancelled upstream as a pending one;
anything else (a task known to be processing, or one the upstream answers 400 for: no longer
pending there) is `task_not_cancellable`. Each cancel is logged (`task_cancelled`).
"""

from __future__ import annotations

import asyncio
import time

from gateway import logs
from gateway.errors import GatewayError, TaskNotCancellableError, UpstreamRejectedError
from gateway.taskrecord import TaskRecord, TaskStatus
from gateway.tasks.tracking import Tracker
from routing.results import Outcome

CANCEL_WAIT = 2.0  # seconds a cancel waits for a send in progress to end (then: not cancellable)


class Canceller:
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker  # a cancelled task ends as every task does: through it
        self.records = tracker.records

    async def cancel(self, record: TaskRecord) -> str:
        if record.status == TaskStatus.STAGED:
            if await self.tracker.store.cancel_staged(record.task_id):
                await self.tracker.fail(record, "cancelled", "task canceled")
                logs.event("task_cancelled", task_id=record.task_id, staged=True)
                return f"task {record.task_id} canceled"
            record = await self.records.load(record.task_id) or record
        record = await self._sent(record)
        if record.terminal or not record.upstream_id or record.status == TaskStatus.PROCESSING:
            raise TaskNotCancellableError(
                f"task {record.task_id} is {record.status}; only pending tasks can be canceled"
            )
        answer = await self.tracker.upstream.cancel(record.upstream_id)
        self.tracker.metrics.upstream_request("cancel", str(answer.status), answer.seconds)
        if answer.status == 400:  # GoAPI: not pending (any more: mjgate's view was older)
            raise TaskNotCancellableError(
                f"task {record.task_id} is no longer pending upstream; only pending tasks can "
                f"be canceled ({answer.message})",
                upstream_status=answer.status,
            )
        if answer.status != 200:
            raise UpstreamRejectedError(
                answer.status, answer.message, upstream_status=answer.status
            )
        record = record.evolve(
            status=TaskStatus.FAILED,
            error_type="cancelled",
            error_message="task canceled",
            updated_at=self.tracker.clock(),
        )
        await asyncio.gather(
            self.records.save(record),
            self.records.closed(record.client_id, record.task_id),
        )
        if await self.tracker.settle(record.task_id, Outcome.CANCELLED) is not None:
            self.tracker.metrics.task_finished(
                record.task_type, record.mode or "none", Outcome.CANCELLED, None
            )
        self.tracker.handoff.change(record)
        logs.event("task_cancelled", task_id=record.task_id, bot_id=record.bot_id, staged=False)
        return f"task {record.task_id} canceled"

    async def _sent(self, record: TaskRecord) -> TaskRecord:
        """A task being sent (reserved, or taken from the staged queue by a settle or the
        dispatcher, no upstream id yet): its record once the send is over (the upstream id
        saved, or ended), waiting at most CANCEL_WAIT; as it is then otherwise."""
        deadline = time.monotonic() + CANCEL_WAIT
        while (
            record.status != TaskStatus.UNKNOWN  # sent, no answer: nothing to wait for
            and not record.terminal
            and not record.upstream_id
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)
            record = await self.records.load(record.task_id) or record
        return record

    async def cancel_many(
        self, client_id: str, before: float
    ) -> tuple[list[str], list[dict[str, str]]]:
        """Cancel every open task of a client created before `before` (unix s): the batch
        cancel. Returns the ids cancelled, and those that could not be (with why)."""
        cancelled: list[str] = []
        refused: list[dict[str, str]] = []
        for task_id in await self.records.open_before(client_id, before):
            record = await self.records.load(task_id)
            if record is None or record.terminal or record.client_id != client_id:
                await self.records.closed(client_id, task_id)  # ended, or gone: out of the index
                continue
            try:
                await self.cancel(record)
            except GatewayError as exc:
                refused.append({"task_id": task_id, "error": exc.type})
            else:
                cancelled.append(task_id)
        return cancelled, refused
