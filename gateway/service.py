"""The task lifecycle (DESIGN.md section 4), up to the upstream's answer: create and dispatch.

create → validate → resolve mode → reserve (account, slot, fast time, lease) → forward →
record → answer. A create the upstream refuses for the account moves to another account; one
it answers with a finished task is settled at once. What happens after (news, settlement,
cancel, failures) is `gateway.tracking.TaskTracker`, reachable as `service.tracker`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from gateway import logs
from gateway.clients import Client
from gateway.errors import (
    InvalidRequestError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from gateway.forwarding import Refusal, classify, upstream_body
from gateway.records import TaskRecord, new_task_id
from gateway.tracking import TaskTracker
from gateway.upstream import UpstreamNotSentError
from gateway.validation import CreateRequest
from routing.costs import CostTable
from routing.decisions import Reservation, Staged
from routing.model import Mode, TaskType


@dataclass(frozen=True)
class CreateResult:
    record: TaskRecord
    replayed: bool = False  # an Idempotency-Key answered with an existing task
    # where the time went (seconds), for the Server-Timing header: route (validate to
    # reserved), upstream (the create call(s) to GoAPI), record (the record written and,
    # for a finished task, the reservation settled)
    timings: dict[str, float] = field(default_factory=dict)


class TaskService:
    """Creates and dispatches tasks with the tracker's parts (store, records, upstream,
    metrics, clock); hands them to the tracker once sent."""

    def __init__(self, tracker: TaskTracker, *, costs: CostTable) -> None:
        self.tracker = tracker
        self.settings = tracker.settings
        self.store = tracker.store
        self.records = tracker.records
        self.upstream = tracker.upstream
        self.metrics = tracker.metrics
        self.clock = tracker.clock
        self.costs = costs

    # -- webhook from mjgate to GoAPI ---------------------------------------------------------
    @property
    def webhook_token(self) -> str:
        from gateway.webhooks import goapi_token

        return goapi_token(self.settings)

    def _goapi_webhook(self) -> dict[str, str] | None:
        if not self.settings.public_url:
            return None
        from gateway.webhooks import goapi_secret

        return {
            "endpoint": f"{self.settings.public_url}/webhooks/goapi/tasks/{self.webhook_token}",
            "secret": goapi_secret(self.settings),
        }

    # -- create -------------------------------------------------------------------------------
    async def load_parent(self, request: CreateRequest, client: Client) -> TaskRecord | None:
        """The parent record of a child task, None when mjgate doesn't know it (forward as is)."""
        assert request.origin_task_id is not None
        parent = await self.records.load(request.origin_task_id)
        if parent is None or parent.client_id != client.id:
            return None
        if parent.status != "completed" or parent.bot_id is None or not parent.upstream_id:
            raise InvalidRequestError(
                "input.origin_task_id", f"the parent task is {parent.status}, not completed"
            )
        return parent

    async def create(
        self,
        client: Client,
        request: CreateRequest,
        *,
        parent: TaskRecord | None,
        idempotency_key: str | None,
    ) -> CreateResult:
        started = time.perf_counter()
        now = self.clock()
        task_id = new_task_id()
        if idempotency_key:
            existing = await self.records.claim_idempotency(
                client.id, idempotency_key, task_id, self.settings.idempotency_ttl
            )
            if existing is not None:
                return CreateResult(await self._wait_for_record(existing), replayed=True)
        config = {k: v for k, v in request.config.items() if k != "webhook_config"}
        record = TaskRecord(
            task_id=task_id,
            client_id=client.id,
            task_type=request.task_type.value,
            status="reserved",
            request={"input": request.input, "config": config},
            webhook=(
                {"endpoint": request.webhook.endpoint, "secret": request.webhook.secret}
                if request.webhook
                else None
            ),
            requested_mode=(
                client.cap_mode(request.mode).value
                if request.mode
                else parent.mode
                if parent
                else ""
            ),
            parent_id=parent.task_id if parent else None,
            tags=client.tags,
            created_at=now,
            updated_at=now,
        )
        if idempotency_key:  # a replay of this key must find the record while it is sent
            await self.records.save(record)
        try:
            decision = await self._reserve(client, record, request, parent)
        except BaseException:
            if idempotency_key:
                await self.records.forget_idempotency(client.id, idempotency_key)
            raise
        timings = {"route": time.perf_counter() - started}
        if isinstance(decision, Staged):
            record = record.evolve(status="staged", decision="staged").with_event(
                "staged", reason=decision.reason
            )
            await self.records.save(record)
            self._created(record)
            return CreateResult(record, timings=timings)
        forwarded = time.perf_counter()
        record = await self.forward(
            record, decision, request=request, parent=parent, client=client, timings=timings
        )
        upstream = timings.setdefault("upstream", 0.0)
        timings["record"] = max(0.0, time.perf_counter() - forwarded - upstream)
        return CreateResult(record, timings=timings)

    async def _wait_for_record(self, task_id: str) -> TaskRecord:
        """The record of a task created with the same Idempotency-Key; the first request may
        still be reserving (it writes the record first), so wait a little for it."""
        for _ in range(100):
            record = await self.records.load(task_id)
            if record is not None:
                return record
            await asyncio.sleep(0.02)
        raise InvalidRequestError("Idempotency-Key", "the task created with this key is gone")

    async def _reserve_root(
        self,
        record: TaskRecord,
        mode: Mode,
        cost: int,
        *,
        staged_limit: int | None,
        exclude: tuple[int, ...] = (),
    ) -> Reservation | Staged:
        return await self.store.reserve_root(
            record.task_id,
            mode,
            cost,
            client_id=record.client_id,
            lease_seconds=self.settings.lease_seconds,
            staged_limit=staged_limit or self.settings.staged_limit,
            staged_timeout=self.settings.staged_timeout,
            exclude=exclude,
            tags=record.tags,
        )

    async def _reserve(
        self,
        client: Client,
        record: TaskRecord,
        request: CreateRequest,
        parent: TaskRecord | None,
        exclude: tuple[int, ...] = (),
    ) -> Reservation | Staged:
        if parent is not None:
            assert parent.bot_id is not None
            parent_mode = Mode(parent.mode)
            cost_mode = parent_mode if parent_mode is not Mode.RELAX else Mode.FAST
            cost = self.costs.cost(request.task_type, cost_mode, request.index)
            return await self.store.reserve_child(
                record.task_id,
                parent.bot_id,
                parent_mode,
                cost,
                client_id=client.id,
                lease_seconds=self.settings.lease_seconds,
                staged_limit=client.staged_limit or self.settings.staged_limit,
                staged_timeout=self.settings.staged_timeout,
            )
        mode = Mode(record.requested_mode)
        cost = self.costs.cost(request.task_type, mode, request.index)
        return await self._reserve_root(
            record, mode, cost, staged_limit=client.staged_limit, exclude=exclude
        )

    def _created(self, record: TaskRecord) -> None:
        self.metrics.task_created(
            record.task_type,
            record.requested_mode or "inherit",
            record.mode or "none",
            _decision_label(record.decision),
        )
        logs.event(
            "task_created",
            task_id=record.task_id,
            task_type=record.task_type,
            requested_mode=record.requested_mode,
            mode=record.mode,
            bot_id=record.bot_id,
            decision=record.decision,
            status=record.status,
        )

    # -- forward (create or staged dispatch) --------------------------------------------------
    async def forward(
        self,
        record: TaskRecord,
        reservation: Reservation,
        *,
        request: CreateRequest | None = None,
        parent: TaskRecord | None = None,
        client: Client | None = None,
        timings: dict[str, float] | None = None,
    ) -> TaskRecord:
        """Send a reserved task upstream, moving to another account when the upstream refuses
        for the account or was never reached. Raises the upstream error for the client.
        `timings["upstream"]` adds up the upstream calls' seconds."""
        if parent is None and record.parent_id:
            parent = await self.records.load(record.parent_id)
        exclude: list[int] = []
        attempts = 0
        while True:
            attempts += 1
            record = record.evolve(
                status="reserved",
                bot_id=reservation.bot_id,
                mode=reservation.mode.value,
                decision=reservation.decision,
            )
            body = upstream_body(
                record,
                reservation,
                parent_upstream_id=parent.upstream_id if parent else None,
                parent_mode=parent.mode if parent else None,
                webhook=self._goapi_webhook(),
            )
            try:
                answer = await self.upstream.create(body)
            except UpstreamNotSentError:
                self.metrics.upstream_request("create", "not_sent", None)
                await self.tracker.release(record.task_id)
                if parent is not None or attempts >= self.settings.create_attempts:
                    await self.tracker.fail(
                        record, "upstream_unavailable", "the upstream could not be reached"
                    )
                    raise
                exclude.append(reservation.bot_id)
                decision = await self._rereserve(record, exclude)
                if isinstance(decision, Staged):
                    return await self._stage_again(record, decision)
                reservation = decision
                continue
            except UpstreamTimeoutError:
                self.metrics.upstream_request("create", "timeout", None)
                record = record.evolve(status="unknown").with_event("upstream_timeout")
                await self.records.save(record)
                raise
            self.metrics.upstream_request("create", str(answer.status), answer.seconds)
            if timings is not None:
                timings["upstream"] = timings.get("upstream", 0.0) + answer.seconds
            task = answer.task
            if answer.status == 200 and task and isinstance(task.get("task_id"), str):
                record = record.evolve(
                    upstream_id=task["task_id"],
                    status=str(task.get("status") or "pending"),
                    task=task,
                    updated_at=self.clock(),
                ).with_event(
                    "sent",
                    bot_id=reservation.bot_id,
                    mode=reservation.mode.value,
                    decision=reservation.decision,
                )
                if record.terminal:  # an upstream that answers with a finished task
                    await self.tracker.settle_terminal(record)
                else:
                    await self.records.save(record)
                if reservation.staged:  # counted as created when it was staged
                    logs.event(
                        "task_dispatched",
                        task_id=record.task_id,
                        bot_id=record.bot_id,
                        mode=record.mode,
                        decision=record.decision,
                    )
                else:
                    self._created(record)
                self.tracker.on_change(record)
                return record
            refusal = classify(answer)
            await self.tracker.release(record.task_id)
            if (
                refusal is Refusal.REQUEST
                or parent is not None
                or attempts >= self.settings.create_attempts
            ):
                if refusal is not Refusal.REQUEST:
                    await self.tracker.account_refused(reservation.bot_id, refusal, answer.message)
                await self.tracker.fail(record, "upstream_rejected", answer.message)
                raise UpstreamRejectedError(
                    answer.status, answer.message, upstream_status=answer.status
                )
            await self.tracker.account_refused(reservation.bot_id, refusal, answer.message)
            exclude.append(reservation.bot_id)
            decision = await self._rereserve(record, exclude)
            if isinstance(decision, Staged):
                return await self._stage_again(record, decision)
            reservation = decision

    async def _rereserve(self, record: TaskRecord, exclude: list[int]) -> Reservation | Staged:
        mode = Mode(record.requested_mode or "relax")
        task_type = TaskType(record.task_type)
        index = record.request.get("input", {}).get("index")
        cost = self.costs.cost(task_type, mode, index)
        return await self._reserve_root(
            record, mode, cost, staged_limit=None, exclude=tuple(exclude)
        )

    async def _stage_again(self, record: TaskRecord, staged: Staged) -> TaskRecord:
        record = record.evolve(status="staged", decision="staged", bot_id=None, mode="").with_event(
            "staged", reason=staged.reason
        )
        await self.records.save(record)
        return record


def _decision_label(decision: str) -> str:
    """Decisions are a small fixed set; anything unexpected is folded to keep labels bounded."""
    known = {
        "routed",
        "staged",
        "inherited",
        "fallback_relax:no_fast_hours",
        "inherited_relax:setting_relax",
        "inherited_relax:no_fast_time",
        "forwarded",
    }
    return decision if decision in known else "other"
