"""Task records: mjgate's own view of every Midjourney task it routed, in Redis.

A record maps mjgate's task id to the upstream's, keeps the client's request (to dispatch a
staged task or retry a create on another account), the routing decision, and the last task
object the upstream returned. `status` is one of:

    staged      waiting for a free slot (nothing reserved, nothing sent)
    reserved    a slot is held, the create is not sent yet
    sending     the create is on the wire
    unknown     the create was sent and no answer came (504 upstream_timeout)
    pending, processing, completed, failed   the upstream's statuses

Redis errors become routing.errors.StoreError here, like in the pool store.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from routing.errors import StoreError
from routing.keys import Keys

TERMINAL = frozenset({"completed", "failed"})
UPSTREAM_STATUSES = frozenset({"pending", "processing", "completed", "failed", "staged"})

T = TypeVar("T")


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
    decision: str = ""
    upstream_id: str | None = None
    parent_id: str | None = None
    task: dict[str, Any] | None = None  # the last upstream task object, untranslated
    error_type: str = ""
    error_message: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0  # last news from the upstream (or local change)
    history: tuple[dict[str, Any], ...] = field(default=())

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def to_fields(self) -> dict[str, bytes | str]:
        fields: dict[str, bytes | str] = {
            "client": self.client_id,
            "type": self.task_type,
            "status": self.status,
            "req": orjson.dumps(self.request),
            "rmode": self.requested_mode,
            "mode": self.mode,
            "bot": "" if self.bot_id is None else str(self.bot_id),
            "dec": self.decision,
            "up": self.upstream_id or "",
            "parent": self.parent_id or "",
            "etype": self.error_type,
            "emsg": self.error_message,
            "ct": repr(self.created_at),
            "ut": repr(self.updated_at),
        }
        if self.webhook:
            fields["hook"] = orjson.dumps(self.webhook)
        if self.task is not None:
            fields["task"] = orjson.dumps(self.task)
        if self.history:
            fields["hist"] = orjson.dumps(list(self.history))
        return fields

    @classmethod
    def from_fields(cls, task_id: str, raw: Mapping[bytes | str, bytes | str]) -> TaskRecord:
        f = {_text(k): v for k, v in raw.items()}

        def text(name: str) -> str:
            return _text(f[name]) if name in f else ""

        return cls(
            task_id=task_id,
            client_id=text("client"),
            task_type=text("type"),
            status=text("status"),
            request=orjson.loads(f["req"]) if "req" in f else {},
            webhook=orjson.loads(f["hook"]) if "hook" in f else None,
            requested_mode=text("rmode"),
            mode=text("mode"),
            bot_id=int(f["bot"]) if f.get("bot") else None,
            decision=text("dec"),
            upstream_id=text("up") or None,
            parent_id=text("parent") or None,
            task=orjson.loads(f["task"]) if "task" in f else None,
            error_type=text("etype"),
            error_message=text("emsg"),
            created_at=float(text("ct") or 0),
            updated_at=float(text("ut") or 0),
            history=tuple(orjson.loads(f["hist"])) if "hist" in f else (),
        )

    def with_event(self, what: str, **details: Any) -> TaskRecord:
        event = {"at": round(time.time(), 3), "what": what, **details}
        return replace(self, history=(*self.history, event)[-20:])


class RecordStore:
    def __init__(self, redis: Redis, keys: Keys, *, ttl: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        source = resources.files("gateway").joinpath("lua/record_save.lua").read_text()
        self._script = redis.register_script(source)

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except RedisError as exc:
            raise StoreError(op, str(exc) or type(exc).__name__) from exc

    async def _write(self, record: TaskRecord, *, force: bool) -> bool:
        args: list[bytes | str | int] = [
            self.ttl,
            "1" if force else "0",
            record.upstream_id or "",
            record.task_id,
        ]
        for name, value in record.to_fields().items():
            args.extend((name, value))
        keys = [self.keys.task(record.task_id), self.keys.upstream_task(record.upstream_id or "-")]
        written = await self._call("record_save", lambda: self._script(keys=keys, args=args))
        return bool(written)

    async def save(self, record: TaskRecord) -> None:
        """Write the record whatever its stored status (local decisions)."""
        await self._write(record, force=True)

    async def save_unless_terminal(self, record: TaskRecord) -> bool:
        """Write upstream news unless the stored record is already terminal; True if written.

        Webhooks, client polls and the reconciler may report the same task concurrently and
        in any order: the first terminal news wins and nothing overwrites it."""
        return await self._write(record, force=False)

    async def load(self, task_id: str) -> TaskRecord | None:
        raw = await self._call("record_load", lambda: self.redis.hgetall(self.keys.task(task_id)))
        return TaskRecord.from_fields(task_id, raw) if raw else None

    async def by_upstream_id(self, upstream_id: str) -> TaskRecord | None:
        value = await self._call(
            "record_lookup", lambda: self.redis.get(self.keys.upstream_task(upstream_id))
        )
        return await self.load(_text(value)) if value else None

    async def claim_idempotency(
        self, client_id: str, key: str, task_id: str, ttl: int
    ) -> str | None:
        """Remember `key` for this client; returns the task id already using it, if any."""
        redis_key = self.keys.idempotency(client_id, key)

        async def run() -> str | None:
            if await self.redis.set(redis_key, task_id, nx=True, ex=ttl):
                return None
            existing = await self.redis.get(redis_key)
            return _text(existing) if existing else None

        return await self._call("idempotency", run)

    async def forget_idempotency(self, client_id: str, key: str) -> None:
        await self._call(
            "idempotency", lambda: self.redis.delete(self.keys.idempotency(client_id, key))
        )
