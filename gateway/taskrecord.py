"""A task record: mjgate's own view of one Midjourney task it routed, and its status.

A record maps mjgate's task id to the upstream's, keeps the client's request (to dispatch a
staged task or retry a create on another account), the routing decision, and the last task
object the upstream returned. `status` is one of (`TaskStatus`):

    reserved    written with the reservation (same round trip), before the create is sent
    staged      waiting for a free slot (nothing reserved, nothing sent)
    unknown     the create was sent and no answer came (504 upstream_timeout)
    pending, processing, completed, failed   the upstream's statuses

`gateway.records.RecordStore` writes and reads records in Redis (`encode`, `decode`).
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from routing.results import Decision, OpenStrEnum, Outcome

_WBITS = 12


class TaskStatus(OpenStrEnum):
    """A record's status: the upstream's, plus mjgate's own `reserved`, `staged`, `unknown`.
    A status the upstream adds is kept as it names it (OpenStrEnum)."""

    RESERVED = "reserved"
    STAGED = "staged"
    UNKNOWN = "unknown"
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED})


def new_task_id() -> str:
    """A random (version 4) UUID as GoAPI's task ids are, at a third of `uuid.uuid4()`'s
    cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    client_id: str
    task_type: str
    status: TaskStatus
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
            status=TaskStatus(status),
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
            running_at=f.get("ra", 0.0),
            gets=f.get("g", 0),
        )

    def with_event(self, what: str, **details: Any) -> TaskRecord:
        event = {"at": round(time.time(), 3), "what": what, **details}
        return self.evolve(history=(*self.history, event)[-20:])


_FIELDS = frozenset(f.name for f in fields(TaskRecord))
