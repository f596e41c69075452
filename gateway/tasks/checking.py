"""Checker: asking the upstream about sent tasks, and the pool's time-driven upkeep.

Three callers ask; all go through `check_upstream` (one GET, its news given to the Tracker):
- the **completion tracker** (`check_due`): tasks whose next check is due in the shared
  schedule (`routing.schedule.CheckSchedule`), claimed atomically so no two replicas check one
  task at once, at most `MJGATE_TRACK_CONCURRENCY` GETs at a time per replica and within the
  deployment's budget of GETs per second;
- a **client's GET** (`refresh`): refreshes only when the task is due in that same schedule, and
  answers the stored record if the upstream does not answer within
  MJGATE_POLL_REFRESH_TIMEOUT;
- the **reconciler** (`reconcile`): reservations whose lease ran out (a crashed replica, a
  create that never got an answer). The lease is the safety net under the tracker.

`upkeep` is the maintenance tick: renewals, cooling deadlines and staged timeouts.
"""

from __future__ import annotations

import asyncio

from gateway import logs
from gateway.errors import UpstreamError
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord
from gateway.tasks.handoff import Handoff
from gateway.tasks.tracking import WEBHOOK, Tracker
from gateway.upstream import UpstreamClient
from routing.errors import StoreError
from routing.results import Outcome
from routing.schedule import CheckSchedule, Due
from routing.store import PoolStore

LEASE_CLAIMS = 100  # expired leases claimed per reconcile pass


class Checker:
    def __init__(
        self,
        settings: Settings,
        *,
        tracker: Tracker,
        store: PoolStore,
        records: RecordStore,
        schedule: CheckSchedule,
        upstream: UpstreamClient,
        metrics: Metrics,
        handoff: Handoff,
    ) -> None:
        self.settings = settings
        self.tracker = tracker
        self.store = store
        self.records = records
        self.schedule = schedule
        self.upstream = upstream
        self.metrics = metrics
        self.handoff = handoff
        self._gets = asyncio.Semaphore(settings.track_concurrency)

    async def check_upstream(self, record: TaskRecord, *, source: str) -> TaskRecord:
        """GET the task upstream and apply what it says. UpstreamError when it can't tell."""
        assert record.upstream_id is not None
        answer = await self.upstream.get(record.upstream_id)
        self.metrics.upstream_request("get", str(answer.status), answer.seconds)
        record = record.evolve(gets=record.gets + 1)
        if answer.status == 200 and answer.task:
            return await self.tracker.apply(record, answer.task, source=source)
        if answer.status == 404:
            await self.tracker.lose(record)
            return await self.records.load(record.task_id) or record
        await self.schedule.again(record.task_id)  # ask again a tracking interval later
        return record

    # -- a client's GET ---------------------------------------------------------------------
    async def refresh(self, record: TaskRecord) -> TaskRecord:
        """The record, refreshed from upstream first if its next check is due."""
        if record.terminal or not record.upstream_id:
            return record
        if not await self.schedule.take(record.task_id):
            return record
        try:
            async with asyncio.timeout(self.settings.poll_refresh_timeout):
                return await self.check_upstream(record, source="client_poll")
        except (TimeoutError, UpstreamError):
            await self.schedule.again(record.task_id)
            return record

    # -- the completion tracker -------------------------------------------------------------
    async def check_due(self) -> int:
        """One pass: news kept while Redis was down, then the due tasks this replica can
        check at once. Returns how many tasks were claimed."""
        await self._apply_backlog()
        claimed = await self.schedule.claim(self.settings.track_concurrency)
        for due in claimed:
            self.metrics.tracker_late(due.late)
        await asyncio.gather(*(self._check(due) for due in claimed))
        return len(claimed)

    async def _check(self, due: Due) -> None:
        async with self._gets:
            record = await self.records.load(due.task_id)
            if record is None:  # expired or never written: nothing to ask about
                await self.tracker.release(due.task_id)
                return
            if record.terminal:  # terminal news saved, settle lost (a crash in between)
                await self.tracker.settle(record.task_id, record.outcome)
                return
            if not record.upstream_id:
                return  # not sent: only sent tasks are scheduled; the lease covers the rest
            try:
                await self.check_upstream(record, source="tracker")
            except UpstreamError:
                await self.schedule.again(record.task_id)

    async def _apply_backlog(self) -> None:
        """GoAPI doesn't retry a webhook mjgate refused while Redis was down: apply it now."""
        news = self.handoff.take_news()
        for position, task in enumerate(news):
            try:
                record = await self.records.by_upstream_id(str(task.get("task_id")))
                if record is not None and not record.terminal:
                    await self.tracker.apply(record, task, source=WEBHOOK)
            except StoreError:
                for later in news[position:]:
                    self.handoff.keep_news(later)
                raise

    # -- the reconciler ---------------------------------------------------------------------
    async def reconcile(self) -> None:
        claims = await self.store.claim_expired_leases(
            LEASE_CLAIMS, max(self.settings.reconcile_interval * 5, 10.0)
        )
        for claim in claims:
            record = await self.records.load(claim.task_id)
            if record is None:
                await self.tracker.settle(claim.task_id, Outcome.FAILED)
            elif not record.upstream_id:
                if claim.resend is not None and not record.terminal:  # never sent: send it
                    logs.event("staged_resent", task_id=claim.task_id, bot_id=claim.bot_id)
                    self.handoff.hand_over((claim.resend,))
                else:
                    await self.tracker.outcome_unknown(record)
            elif record.terminal:
                await self.tracker.settle(record.task_id, record.outcome)
            else:
                try:
                    await self.check_upstream(record, source="reconciler")
                except UpstreamError as exc:
                    logs.event("reconcile_failed", task_id=record.task_id, error=exc.type)

    # -- upkeep -----------------------------------------------------------------------------
    async def upkeep(self) -> None:
        result = await self.store.tick()
        for task_id in result.expired_staged:
            await self.tracker.staged_timeout(task_id)
        for bot_id in result.renewed:
            self.metrics.account_event("renewed")
            logs.event("account_renewed", bot_id=bot_id)
        for bot_id in result.woken:
            self.metrics.account_event("woken")
            logs.event("account_woken", bot_id=bot_id)
        if result.renewed or result.woken or result.paced:  # paced: a window opened, say
            self.handoff.dispatch_soon()
