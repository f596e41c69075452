"""Task records: mjgate's own view of every Midjourney task it routed, in Redis.

A record maps mjgate's task id to the upstream's, keeps the client's request (to dispatch a
staged task or retry a create on another account), the routing decision, and the last task
object the upstream returned. `status` is one of:

    reserved    written with the reservation (same round trip), before the create is sent
    staged      waiting for a free slot (nothing reserved, nothing sent)
    unknown     the create was sent and no answer came (504 upstream_timeout)
    pending, processing, completed, failed   the upstream's statuses

Redis errors become routing.errors.StoreError here, like in the pool store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, fields
from enum import StrEnum
from importlib import resources
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from routing.errors import StoreError
from routing.keys import Keys
from routing.pipe import Pipe
from routing.results import Decision, Outcome

_WBITS = 12
# SET NX, or the value already there: one atomic step on one key
_CLAIM = (
    "local v = redis.call('GET', KEYS[1]) if v then return v end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return false"
)


class TaskStatus(StrEnum):
    """A record's status: the upstream's, plus mjgate's own `reserved`, `staged`, `unknown`."""

    RESERVED = "reserved"
    STAGED = "staged"
    UNKNOWN = "unknown"
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})

T = TypeVar("T")


def new_task_id() -> str:
    """A random (version 4) UUID as GoAPI's task ids are, at a third of `uuid.uuid4()`'s
    cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    client_id: str
    task_type: str
    status: str
    request: dict[str, Any]  # {"input": {...}, "config": {...}} as the client sent it
    webhook: dict[str, str] | None = None  # the client's webhook_config
    requested_mode: str = ""
    mode: str = ""  # effective
    bot_id: int | None = None
    decision: Decision | None = None  # none yet: the create was not decided
    upstream_id: str | None = None
    parent_id: str | None = None
    task: dict[str, Any] | None = None  # the last upstream task object, untranslated
    error_type: str = ""
    error_message: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0  # last news from the upstream (or local change)
    history: tuple[dict[str, Any], ...] = field(default=())
    tags: tuple[str, ...] = ()  # the client key's allowed account tags (re-routing keeps them)
    # completion tracking (gateway.tasks.tracking): when the create was sent, when the first
    # check was expected to find it finished, when it was last seen running, upstream GETs
    sent_at: float = 0.0
    expected_end: float = 0.0
    latest_end: float = 0.0  # if a check at expected_end finds it running: checked then
    running_at: float = 0.0
    gets: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def outcome(self) -> Outcome:
        """How a terminal task settles: completed keeps fast time, failed refunds it."""
        return Outcome.COMPLETED if self.status == TaskStatus.COMPLETED else Outcome.FAILED

    def evolve(self, **changes: Any) -> TaskRecord:
        """`dataclasses.replace` at a sixth of its cost (it re-runs `__init__` through the
        fields' metadata, ~5 µs; a create makes four of them). Only field names are accepted."""
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"TaskRecord has no field {', '.join(sorted(unknown))}")
        new = object.__new__(TaskRecord)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    def encode(self) -> bytes:
        """One compact value: orjson, zlib-compressed once the task is terminal (a finished
        record is read rarely and kept for days; a running one is rewritten on every update)."""
        data = orjson.dumps(
            {
                "c": self.client_id,
                "t": self.task_type,
                "r": self.request,
                "h": self.webhook,
                "rm": self.requested_mode,
                "m": self.mode,
                "b": self.bot_id,
                "dec": self.decision or "",
                "u": self.upstream_id,
                "p": self.parent_id,
                "task": self.task,
                "et": self.error_type,
                "em": self.error_message,
                "ct": self.created_at,
                "ut": self.updated_at,
                "hist": self.history,
                "tg": self.tags,
                "sa": self.sent_at,
                "xe": self.expected_end,
                "xl": self.latest_end,
                "ra": self.running_at,
                "g": self.gets,
            }
        )
        if not self.terminal:
            return b"j" + data
        # raw deflate with a 4 KiB window: the same size as zlib's defaults on a record of
        # ~2 KiB, at a tenth of the cost (zlib's default 32 KiB window setup dominates)
        deflate = zlib.compressobj(1, zlib.DEFLATED, -_WBITS, 4)
        return b"z" + deflate.compress(data) + deflate.flush()

    @classmethod
    def decode(cls, task_id: str, status: str, blob: bytes) -> TaskRecord:
        raw = zlib.decompress(blob[1:], -_WBITS) if blob[:1] == b"z" else blob[1:]
        f = orjson.loads(raw)
        return cls(
            task_id=task_id,
            client_id=f["c"],
            task_type=f["t"],
            status=status,
            request=f["r"],
            webhook=f["h"],
            requested_mode=f["rm"],
            mode=f["m"],
            bot_id=f["b"],
            decision=Decision(f["dec"]) if f["dec"] else None,
            upstream_id=f["u"],
            parent_id=f["p"],
            task=f["task"],
            error_type=f["et"],
            error_message=f["em"],
            created_at=f["ct"],
            updated_at=f["ut"],
            history=tuple(f["hist"]),
            tags=tuple(f.get("tg") or ()),
            sent_at=f.get("sa", 0.0),
            expected_end=f.get("xe", 0.0),
            latest_end=f.get("xl", 0.0),
            running_at=f.get("ra", 0.0),
            gets=f.get("g", 0),
        )

    def with_event(self, what: str, **details: Any) -> TaskRecord:
        event = {"at": round(time.time(), 3), "what": what, **details}
        return self.evolve(history=(*self.history, event)[-20:])


_FIELDS = frozenset(f.name for f in fields(TaskRecord))


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
        self._source = resources.files("gateway").joinpath("lua/record_save.lua").read_text()
        self._sha = hashlib.sha1(self._source.encode()).hexdigest()

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            if self.timeout is None:
                return await fn()
            async with asyncio.timeout(self.timeout):
                return await fn()
        except RedisError as exc:
            raise StoreError(op, str(exc) or type(exc).__name__) from exc
        except TimeoutError as exc:
            raise StoreError(op, f"no answer within {self.timeout} s") from exc

    def _write(self, record: TaskRecord, *, when: str) -> Coroutine[Any, Any, bool]:
        """The record (one script: the condition and the write), then the upstream-id map,
        which lives in another cluster slot: its own command in the same round trip. The
        map exists while the task can still get webhooks: `save` sets it (deletes it for a
        terminal record), any terminal write deletes it (it is gone already if the stored
        record was terminal), a conditional non-terminal one leaves it as `save` set it when
        the upstream id became known."""
        args = (self.ttl, when, record.status, record.encode())
        reply = self.pipe.evalsha(self._sha, self._source, (self.keys.task(record.task_id),), args)
        mapped: Awaitable[Any] | None = None
        if record.upstream_id:
            key = self.keys.upstream_task(record.upstream_id)
            if record.terminal:
                mapped = self.pipe.send(b"DEL", key)
            elif when == "1":
                mapped = self.pipe.send(b"SET", key, record.task_id, b"EX", self.ttl)
        return self._written(reply, mapped)

    async def _written(self, reply: Awaitable[Any], mapped: Awaitable[Any] | None) -> bool:
        try:
            written = bool(await self._call("record_save", lambda: reply))
        finally:
            if mapped is not None:
                await self._call("record_save", lambda: mapped)
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
        return self._call("record_delete", lambda: self.pipe.send(b"DEL", self.keys.task(task_id)))

    def opened(self, record: TaskRecord) -> Coroutine[Any, Any, Any]:
        """Index a new task among its client's open tasks (sent when called)."""
        key = self.keys.open_tasks(record.client_id)
        send = self.pipe.send(b"ZADD", key, f"{record.created_at:.3f}", record.task_id)
        return self._call("record_index", lambda: send)

    def closed(self, client_id: str, task_id: str) -> Coroutine[Any, Any, Any]:
        """A task ended (or was never created): out of its client's open tasks."""
        send = self.pipe.send(b"ZREM", self.keys.open_tasks(client_id), task_id)
        return self._call("record_index", lambda: send)

    async def open_before(self, client_id: str, before: float, limit: int = 1000) -> list[str]:
        """The client's open tasks created before `before` (unix s), oldest first. An index:
        the records say whether each is still open."""
        key = self.keys.open_tasks(client_id)
        raw = await self._call(
            "record_index",
            lambda: self.pipe.send(
                b"ZRANGEBYSCORE", key, b"-inf", f"({before}", b"LIMIT", 0, limit
            ),
        )
        return [_text(item) for item in raw]

    async def load(self, task_id: str) -> TaskRecord | None:
        status, blob = await self._call(
            "record_load", lambda: self.pipe.send(b"HMGET", self.keys.task(task_id), "s", "d")
        )
        if status is None or blob is None:
            return None
        return TaskRecord.decode(task_id, _text(status), blob)

    async def by_upstream_id(self, upstream_id: str) -> TaskRecord | None:
        value = await self._call(
            "record_lookup", lambda: self.redis.get(self.keys.upstream_task(upstream_id))
        )
        return await self.load(_text(value)) if value else None

    def claim_idempotency(
        self, client_id: str, key: str, task_id: str, ttl: int, fingerprint: str = ""
    ) -> Coroutine[Any, Any, tuple[str, str] | None]:
        """Remember `key` for this client, with the request's fingerprint; returns the task id
        and fingerprint already using it, if any. Sent when called, on the hot-path pipe: a
        record saved right after it is written before any later request of this replica can
        read the key."""
        reply = self.pipe.send(
            b"EVAL", _CLAIM, 1, self.keys.idempotency(client_id, key), f"{task_id} {fingerprint}",
            ttl,
        )  # fmt: skip
        return self._claimed(reply)

    async def _claimed(self, reply: Awaitable[Any]) -> tuple[str, str] | None:
        existing = await self._call("idempotency", lambda: reply)
        if not existing:
            return None
        found, _, print_ = _text(existing).partition(" ")
        return found, print_

    async def forget_idempotency(self, client_id: str, key: str) -> None:
        await self._call(
            "idempotency", lambda: self.redis.delete(self.keys.idempotency(client_id, key))
        )
