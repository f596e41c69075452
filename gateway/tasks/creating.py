"""Creator: a validated create becomes a task: reserved and sent, or staged.

create → (Idempotency-Key) → requested mode, capped by the key's policy → the record written
and the account reserved in the same round trip (the record first: whoever later reserves a
staged task always finds its record) → sent (`gateway.tasks.sending`) → answered.

- An `Idempotency-Key` remembers the task it created and a fingerprint of the request: the
  same key with the same request answers that task (one upstream call); with another request
  422 `idempotency_key_reused` (the key names one request); while the first request has not
  written its record yet, 409 `idempotency_in_progress` with `Retry-After: 1`.
- A child task runs on its parent's account in the parent's mode; a `process_mode: relax` the
  client sends on a child is honoured (a relax never costs fast time), any other is ignored.
- A create refused before anything was sent (no account can run it, the key's staged limit, a
  store failure) leaves nothing behind: its record is deleted, its reservation released. One
  the upstream refused or failed (`gateway.errors.NOTHING_RAN`) frees its Idempotency-Key: a
  retry with the same key is a new attempt (a timeout keeps it: the task may exist).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway import logs
from gateway.api.validation import CreateRequest
from gateway.errors import (
    NOTHING_RAN,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
)
from gateway.keys.client import Client
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord, TaskStatus, new_task_id
from gateway.tasks.sending import Sender, count_created
from gateway.tasks.undoing import Undo
from gateway.webhooks.alerts import AlertWebhook
from routing.costs import CostTable
from routing.errors import (
    NoRelaxCapableAccountError,
    PoolEmptyError,
    TaggedAccountsUnavailableError,
)
from routing.model import Mode
from routing.results import Decision, QuotaFigures, Reservation, Staged
from routing.store import PoolStore


async def _all(*pending: Awaitable[Any]) -> None:
    """Await every reply; then raise the first error, if any (none is left unawaited)."""
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


@dataclass(frozen=True)
class CreateResult:
    record: TaskRecord
    replayed: bool = False  # an Idempotency-Key answered with an existing task
    # where the time went (seconds), for the Server-Timing header: route (validate to
    # reserved), upstream (the create call(s) to GoAPI), record (the record written and,
    # for a finished task, the reservation settled)
    timings: dict[str, float] = field(default_factory=dict)
    quota: QuotaFigures = ()  # what is left of each of the key's quotas, for the headers


def fingerprint(request: CreateRequest) -> str:
    """A digest of what the request asks for, to recognise a reused Idempotency-Key."""
    asked = {"t": request.task_type.value, "i": request.input, "c": request.config}
    return hashlib.sha256(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def requested_mode(client: Client, request: CreateRequest, parent: TaskRecord | None) -> str:
    if parent is not None:
        asked = request.input.get("process_mode")
        if isinstance(asked, str) and asked.strip().lower() == Mode.RELAX.value:
            return Mode.RELAX.value
        return parent.mode
    return client.cap_mode(request.mode).value if request.mode else ""


class Creator:
    def __init__(
        self,
        settings: Settings,
        *,
        store: PoolStore,
        records: RecordStore,
        sender: Sender,
        metrics: Metrics,
        costs: CostTable,
        alerts: AlertWebhook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.alerts = alerts  # operator alerts (MJGATE_ALERT_WEBHOOK_URL), None: none
        self.store = store
        self.records = records
        self.sender = sender
        self.metrics = metrics
        self._undo = Undo(records=records, store=store, tracker=sender.tracker)
        self.costs = costs
        self.clock = clock

    async def load_parent(self, request: CreateRequest, client: Client) -> TaskRecord | None:
        """The parent record of a child task, None when mjgate doesn't know it (forward as is)."""
        assert request.origin_task_id is not None
        parent = await self.records.load(request.origin_task_id)
        if parent is None or parent.client_id != client.id:
            return None
        if parent.status != TaskStatus.COMPLETED or parent.bot_id is None or not parent.upstream_id:
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
        self.sender.check_backoff()
        now = self.clock()
        task_id = new_task_id()
        config = {k: v for k, v in request.config.items() if k != "webhook_config"}
        record = TaskRecord(
            task_id=task_id,
            client_id=client.id,
            task_type=request.task_type.value,
            status=TaskStatus.RESERVED,
            request={"input": request.input, "config": config},
            webhook=(
                {"endpoint": request.webhook.endpoint, "secret": request.webhook.secret}
                if request.webhook
                else None
            ),
            requested_mode=requested_mode(client, request, parent),
            parent_id=parent.task_id if parent else None,
            tags=client.tags,
            created_at=now,
            updated_at=now,
        )
        if idempotency_key:  # the key, then this record right behind it (one batch)
            printed = fingerprint(request)
            claiming = self.records.claim_idempotency(
                client.id, idempotency_key, task_id, self.settings.idempotency_ttl, printed
            )
            saving = self.records.save(record)
            opening = self.records.opened(record)
            try:
                existing = await claiming
            except BaseException:
                await self._undo.forget(record, None, saving, opening)
                raise
            if existing is not None:
                await self._undo.forget(record, None, saving, opening)
                return await self._replay(*existing, printed)
        else:
            saving = self.records.save(record)  # sent now; the reservation goes right after
            opening = self.records.opened(record)  # the key's open tasks (the batch cancel)
        try:
            decision = await self._reserve(client, record, request, parent)
        except NoRelaxCapableAccountError as exc:
            await self._undo.forget(record, idempotency_key, saving, opening)
            if not client.tags or isinstance(exc, PoolEmptyError):
                raise
            tags = ", ".join(client.tags)
            raise TaggedAccountsUnavailableError(
                f"no active account carrying this key's tags ({tags}) can run this task"
            ) from exc
        except BaseException:
            await self._undo.forget(record, idempotency_key, saving, opening)
            raise
        try:
            await _all(saving, opening)
        except BaseException:  # no record, no task: give back what was taken
            await self._undo.forget(record, idempotency_key, taken=decision)
            raise
        timings = {"route": time.perf_counter() - started}
        self._thresholds(client, decision.alerts)
        if isinstance(decision, Staged):
            record = record.evolve(status=TaskStatus.STAGED, decision=Decision.STAGED).with_event(
                "staged", reason=decision.reason
            )
            # unless a settle or the dispatcher already took it on (their writes win)
            await self.records.save_if(record, TaskStatus.RESERVED)
            count_created(self.metrics, record)
            self.metrics.task_staged(decision.reason)
            return CreateResult(record, timings=timings, quota=decision.quota)
        sending = time.perf_counter()
        try:
            record = await self.sender.send(record, decision, parent=parent, timings=timings)
        except NOTHING_RAN:
            if idempotency_key:  # nothing ran: a retry with the same key is a new attempt
                await self._undo.forget_key(client.id, idempotency_key)
            raise
        upstream = timings.setdefault("upstream", 0.0)
        timings["record"] = max(0.0, time.perf_counter() - sending - upstream)
        return CreateResult(record, timings=timings, quota=decision.quota)

    def _thresholds(self, client: Client, alerts: QuotaFigures) -> None:
        """A soft threshold of a quota crossed for the first time in its period."""
        for quota, percent in alerts:
            logs.event("quota_threshold", logging.WARNING, key=client.id, key_name=client.name,
                       quota=quota, percent=percent)  # fmt: skip
            self.metrics.quota_threshold(quota, percent)
            if self.alerts is not None:
                self.alerts.send("quota_threshold", key=client.id, key_name=client.name,
                                 quota=quota, percent=percent)  # fmt: skip

    async def _replay(self, task_id: str, printed: str, mine: str) -> CreateResult:
        if printed and printed != mine:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used for another request; use a new key per request"
            )
        record = await self.records.load(task_id)
        if record is None:
            raise IdempotencyInProgressError(
                "a request with this Idempotency-Key is still being created; retry shortly",
                headers={"retry-after": "1"},
            )
        return CreateResult(record, replayed=True)

    async def _reserve(
        self,
        client: Client,
        record: TaskRecord,
        request: CreateRequest,
        parent: TaskRecord | None,
    ) -> Reservation | Staged:
        staged_limit = client.staged_limit or self.settings.staged_limit
        if parent is not None:
            assert parent.bot_id is not None
            mode = Mode(record.requested_mode)
            cost_mode = mode if mode is not Mode.RELAX else Mode.FAST
            return await self.store.reserve_child(
                record.task_id,
                parent.bot_id,
                mode,
                self.costs.cost(request.task_type, cost_mode, request.index),
                client_id=client.id,
                lease_seconds=self.settings.lease_seconds,
                staged_limit=staged_limit,
                staged_timeout=self.settings.staged_timeout,
                weight=client.weight,
                quota=client.quota,
            )
        mode = Mode(record.requested_mode)
        pin = request.input.get("bot_id") if client.may_pin else None  # others: ignored
        return await self.store.reserve_root(
            record.task_id,
            mode,
            self.costs.cost(request.task_type, mode, request.index),
            client_id=client.id,
            lease_seconds=self.settings.lease_seconds,
            staged_limit=staged_limit,
            staged_timeout=self.settings.staged_timeout,
            tags=record.tags,
            weight=client.weight,
            pin=pin if isinstance(pin, int) and pin > 0 else None,
            quota=client.quota,
        )
