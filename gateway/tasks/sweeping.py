"""The sweep: open tasks that nothing would ever end, found and ended or tracked again.

Every open task is held by something that will end it: its reservation (whose lease the
reconciler claims), its staged entry (dispatched, or failed at its timeout) or its planned
check (the completion tracker). A Redis failover can lose those writes and keep the record
(replication is asynchronous; docs/redis.md): the task then stays `pending` or `staged` for
its client until the record expires. The sweep walks every client's open tasks (the index
the batch cancel uses), a bounded slice per pass, and for a task none of them holds:

- sent (it has an upstream id): the upstream-id map is written again, so GoAPI's webhooks
  reach it again, and the task is checked upstream now (`orphan_checked`): ended if it has,
  else looked at again by the next passes (the completion tracker checks only reserved
  tasks) until it ends, every `grace` at most;
- staged, never sent: failed as `task_lost` (its place in the queue is gone; the client may
  create it again); anything else never sent: `upstream_outcome_unknown`, as the reconciler
  does (never re-sent blindly). Both only if the record did not change meanwhile.

Only tasks older than `grace` (twice the lease) are looked at, and only when their record had
no news for as long: a create, a send or a settle in progress holds its task for less. One
replica sweeps per pass (a lock with the pass's length); each client's slice continues where
the last one stopped and starts again from the oldest at the end, so a long-running task is
looked at again later (a failover can come at any time of its life).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway import logs
from gateway.errors import UpstreamError
from gateway.records import RecordStore
from gateway.taskrecord import TaskRecord, TaskStatus
from gateway.tasks.checking import Checker
from gateway.tasks.tracking import Tracker
from routing.errors import translated
from routing.store import PoolStore
from routing.storeops import StoreOp

SLICE = 100  # open tasks looked at per client per pass


class ClientIds(Protocol):
    """Every client id that may have tasks (gateway.keys.store.KeyStore)."""

    async def client_ids(self) -> tuple[str, ...]: ...


class Sweeper:
    def __init__(
        self,
        *,
        store: PoolStore,
        records: RecordStore,
        checker: Checker,
        tracker: Tracker,
        clients: ClientIds,
        grace: float,
        every: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.records = records
        self.checker = checker
        self.tracker = tracker
        self.clients = clients
        self.grace = grace
        self.every = every
        self.clock = clock
        self._after: dict[str, float] = {}  # per client: where the next slice starts

    async def sweep(self) -> int:
        """One pass, if no other replica holds it: returns how many tasks it ended or
        tracked again."""
        if not await self._lock():
            return 0
        found = 0
        before = self.clock() - self.grace
        for client in await self.clients.client_ids():
            after = self._after.get(client, float("-inf"))
            tasks = await self.records.open_after(client, after, before, SLICE)
            self._after[client] = tasks[-1][1] if len(tasks) == SLICE else float("-inf")
            for task_id, _ in tasks:
                found += await self._look(client, task_id, before)
        return found

    async def _lock(self) -> bool:
        key = self.store.keys.sweep_lock()
        taken = self.store.pipe.send(b"SET", key, b"1", b"NX", b"PX", int(self.every * 1000))
        return bool(await translated(StoreOp.SWEEP, taken))

    async def _held(self, task_id: str) -> bool:
        """Does a reservation or a staged entry hold the task?"""
        keys = self.store.keys
        held: Awaitable[int] = self.store.pipe.send(
            b"EXISTS", keys.reservation(task_id), keys.staged_entry(task_id)
        )
        return bool(await translated(StoreOp.SWEEP, held))

    async def _look(self, client: str, task_id: str, before: float) -> int:
        record = await self.records.load(task_id)
        if record is None or record.terminal:  # expired, or ended: out of the index
            await self.records.closed(client, task_id)
            return 0
        if record.updated_at > before or await self._held(task_id):
            return 0
        if record.upstream_id:
            return await self._check(record)
        return await self._end(record)

    async def _check(self, record: TaskRecord) -> int:
        await self.records.remap(record)
        logs.event("orphan_checked", task_id=record.task_id, upstream_id=record.upstream_id)
        try:
            await self.checker.check_upstream(record, source="sweep")
        except UpstreamError as exc:  # asked again by the next pass
            logs.event("orphan_check_failed", task_id=record.task_id, error=exc.type)
        return 1

    async def _end(self, record: TaskRecord) -> int:
        if record.status == TaskStatus.STAGED:
            error, message = (
                "task_lost",
                (
                    "mjgate lost this staged task's place in its queue (a Redis failover); it "
                    "was never sent upstream: create it again"
                ),
            )
        else:
            error, message = (
                "upstream_outcome_unknown",
                ("the upstream never confirmed this task; it was not re-sent"),
            )
        if not await self.tracker.fail(record, error, message, only_if=record.status):
            return 0
        logs.event("orphan_ended", task_id=record.task_id, error=error)
        return 1
