"""RecordStore: task records (`gateway.taskrecord.TaskRecord`) in Redis, with what hangs on
them: the upstream-id map (which task a webhook is about), each client's open tasks (the batch
cancel) and the idempotency keys.

Redis errors become routing.errors.StoreError (`routing.errors.store_errors`), as in every store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from redis.asyncio import Redis

from gateway.taskrecord import TaskRecord
from routing.errors import store_errors
from routing.keys import Keys
from routing.pipe import Pipe
from routing.scripts import Script
from routing.storeops import StoreOp

T = TypeVar("T")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RecordStore:
    """Records are written and read on `pipe` (the hot path: every create and poll); the
    idempotency keys use `redis`."""

    def __init__(
        self, redis: Redis, keys: Keys, *, ttl: int, pipe: Pipe, timeout: float | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self.pipe = pipe
        self.timeout = timeout
        self._save_script = Script.from_package("gateway", "record_save")
        self._claim_script = Script.from_package("gateway", "idempotency_claim")

    async def _call(self, op: StoreOp, fn: Callable[[], Awaitable[T]]) -> T:
        async with store_errors(op, self.timeout):
            return await fn()

    def _write(self, record: TaskRecord, *, when: str) -> Coroutine[Any, Any, bool]:
        """The record (one script: the condition and the write), then the upstream-id map,
        which lives in another cluster slot: its own command in the same round trip. The
        map lives as long as the record: `save` and any terminal write set it (a finished
        task's upstream id is still mjgate's: the pass-through refuses it to managed keys;
        webhooks for a finished task are ignored by their handler), a conditional
        non-terminal write leaves it as `save` set it when the upstream id became known."""
        args = (self.ttl, when, record.status, record.encode())
        reply = self._save_script.on_pipe(self.pipe, (self.keys.task(record.task_id),), args)
        mapped: Awaitable[Any] | None = None
        if record.upstream_id and (record.terminal or when == "1"):
            key = self.keys.upstream_task(record.upstream_id)
            mapped = self.pipe.send(b"SET", key, record.task_id, b"EX", self.ttl)
        return self._written(reply, mapped)

    async def _written(self, reply: Awaitable[Any], mapped: Awaitable[Any] | None) -> bool:
        try:
            written = bool(await self._call(StoreOp.RECORD_SAVE, lambda: reply))
        finally:
            if mapped is not None:
                await self._call(StoreOp.RECORD_SAVE, lambda: mapped)
        return written

    def save(self, record: TaskRecord) -> Coroutine[Any, Any, bool]:
        """Write the record whatever its stored status (local decisions). Like every write
        here, sent when called: writes called in a row run in that order."""
        return self._write(record, when="1")

    def save_unless_terminal(self, record: TaskRecord) -> Coroutine[Any, Any, bool]:
        """Write upstream news unless the stored record is already terminal; True if written.

        Webhooks, client polls and the reconciler may report the same task concurrently and
        in any order: the first terminal news wins and nothing overwrites it."""
        return self._write(record, when="0")

    def save_if(self, record: TaskRecord, status: str) -> Coroutine[Any, Any, bool]:
        """Write the record only if the stored one's status is still `status`; True if
        written (a staged create marking its record staged, unless a dispatcher already
        took the task on)."""
        return self._write(record, when=f"={status}")

    def delete(self, task_id: str) -> Coroutine[Any, Any, Any]:
        """Forget a record no client was ever told about (its create was refused)."""
        return self._call(
            StoreOp.RECORD_DELETE, lambda: self.pipe.send(b"DEL", self.keys.task(task_id))
        )

    def opened(self, record: TaskRecord) -> Coroutine[Any, Any, Any]:
        """Index a new task among its client's open tasks (sent when called)."""
        key = self.keys.open_tasks(record.client_id)
        send = self.pipe.send(b"ZADD", key, f"{record.created_at:.3f}", record.task_id)
        return self._call(StoreOp.RECORD_INDEX, lambda: send)

    def closed(self, client_id: str, task_id: str) -> Coroutine[Any, Any, Any]:
        """A task ended (or was never created): out of its client's open tasks."""
        send = self.pipe.send(b"ZREM", self.keys.open_tasks(client_id), task_id)
        return self._call(StoreOp.RECORD_INDEX, lambda: send)

    def remap(self, record: TaskRecord) -> Coroutine[Any, Any, Any]:
        """Write the upstream-id map of a sent task again (a failover lost it)."""
        assert record.upstream_id is not None
        key = self.keys.upstream_task(record.upstream_id)
        send = self.pipe.send(b"SET", key, record.task_id, b"EX", self.ttl)
        return self._call(StoreOp.RECORD_SAVE, lambda: send)

    async def open_after(
        self, client_id: str, after: float, before: float, limit: int
    ) -> list[tuple[str, float]]:
        """The client's open tasks created after `after` and before `before` (unix s), oldest
        first, with their creation times."""
        key = self.keys.open_tasks(client_id)
        raw = await self._call(
            StoreOp.RECORD_INDEX,
            lambda: self.pipe.send(
                b"ZRANGEBYSCORE", key, f"({after}", f"({before}", b"WITHSCORES", b"LIMIT", 0, limit
            ),
        )
        return [(_text(raw[i]), float(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def open_before(self, client_id: str, before: float, limit: int = 1000) -> list[str]:
        """The client's open tasks created before `before` (unix s), oldest first. An index:
        the records say whether each is still open."""
        key = self.keys.open_tasks(client_id)
        raw = await self._call(
            StoreOp.RECORD_INDEX,
            lambda: self.pipe.send(
                b"ZRANGEBYSCORE", key, b"-inf", f"({before}", b"LIMIT", 0, limit
            ),
        )
        return [_text(item) for item in raw]

    async def load(self, task_id: str) -> TaskRecord | None:
        status, blob = await self._call(
            StoreOp.RECORD_LOAD, lambda: self.pipe.send(b"HMGET", self.keys.task(task_id), "s", "d")
        )
        if status is None or blob is None:
            return None
        return TaskRecord.decode(task_id, _text(status), blob)

    async def by_upstream_id(self, upstream_id: str) -> TaskRecord | None:
        value = await self._call(
            StoreOp.RECORD_LOOKUP, lambda: self.redis.get(self.keys.upstream_task(upstream_id))
        )
        return await self.load(_text(value)) if value else None

    def claim_idempotency(
        self, client_id: str, key: str, task_id: str, ttl: int, fingerprint: str = ""
    ) -> Coroutine[Any, Any, tuple[str, str] | None]:
        """Remember `key` for this client, with the request's fingerprint; returns the task id
        and fingerprint already using it, if any. Sent when called, on the hot-path pipe: a
        record saved right after it is written before any later request of this replica can
        read the key."""
        reply = self._claim_script.on_pipe(
            self.pipe, (self.keys.idempotency(client_id, key),), (f"{task_id} {fingerprint}", ttl)
        )
        return self._claimed(reply)

    async def _claimed(self, reply: Awaitable[Any]) -> tuple[str, str] | None:
        existing = await self._call(StoreOp.IDEMPOTENCY, lambda: reply)
        if not existing:
            return None
        found, _, print_ = _text(existing).partition(" ")
        return found, print_

    async def forget_idempotency(self, client_id: str, key: str) -> None:
        await self._call(
            StoreOp.IDEMPOTENCY, lambda: self.redis.delete(self.keys.idempotency(client_id, key))
        )
