"""Undo: what a create that failed before its client heard of the task leaves behind is
given back and deleted (its reservation or staged entry, its record, its place among the key's
open tasks, its Idempotency-Key), without holding up the client's error when Redis is failing:
waited for UNDO_WAIT at most (done by then with a healthy Redis), then carried on in the
background, so the 503 comes within MJGATE_REDIS_TIMEOUT."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from gateway.records import RecordStore
from gateway.taskrecord import TaskRecord
from gateway.tasks.tracking import Tracker
from routing.results import Reservation, Staged
from routing.store import PoolStore

UNDO_WAIT = 0.05  # seconds a failing create waits for its clean-up


class Undo:
    def __init__(self, *, records: RecordStore, store: PoolStore, tracker: Tracker) -> None:
        self.records = records
        self.store = store
        self.tracker = tracker
        self._undoing: set[asyncio.Future[None]] = set()  # clean-ups still running

    async def forget(
        self,
        record: TaskRecord,
        idempotency_key: str | None,
        *sent: Awaitable[Any],
        taken: Reservation | Staged | None = None,
    ) -> None:
        """A create that failed before the client heard of its task leaves nothing behind:
        what it `taken` is given back, the writes `sent` for it are awaited whatever they hold
        (the caller is already failing), then undone. Waited for UNDO_WAIT at most, then
        carried on in the background: a failing store doesn't hold up the client's error."""
        undo = asyncio.ensure_future(self._undo(record, idempotency_key, sent, taken))
        self._undoing.add(undo)
        undo.add_done_callback(self._undoing.discard)
        await asyncio.wait({undo}, timeout=UNDO_WAIT)

    async def _undo(
        self,
        record: TaskRecord,
        idempotency_key: str | None,
        sent: tuple[Awaitable[Any], ...],
        taken: Reservation | Staged | None,
    ) -> None:
        with contextlib.suppress(Exception):
            if isinstance(taken, Reservation):
                await self.tracker.release(record.task_id)
            elif taken is not None:
                await self.store.cancel_staged(record.task_id)
        for reply in sent:
            with contextlib.suppress(Exception):
                await reply
        with contextlib.suppress(Exception):
            await self.records.delete(record.task_id)
        with contextlib.suppress(Exception):
            await self.records.closed(record.client_id, record.task_id)
        if idempotency_key:
            await self.forget_key(record.client_id, idempotency_key)

    async def forget_key(self, client_id: str, idempotency_key: str) -> None:
        with contextlib.suppress(Exception):
            await self.records.forget_idempotency(client_id, idempotency_key)
