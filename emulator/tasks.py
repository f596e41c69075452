"""An emulated task and its GoAPI task object, keys in the order of a real response.

`render` is the only place the task object is built, for answers and webhooks alike.
Points in `meta.usage` are [L]: a flat price per mode, frozen at create, consumed on completion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from emulator.accounts import Account
from emulator.errors import EmulatorError
from emulator.facts import Mode
from emulator.outputs import OutputKind, output_kind
from emulator.validation import CreateRequest

ZERO_TIME = "0001-01-01T00:00:00Z"
POINTS = {Mode.RELAX: 400_000, Mode.FAST: 700_000, Mode.TURBO: 1_400_000}
FAILED_CODE = 10000  # GoAPI's task error codes are unconfirmed [L]


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED})


def iso(timestamp: float | None) -> str:
    if timestamp is None:
        return ZERO_TIME
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


@dataclass(slots=True, eq=False)
class Task:
    task_id: str
    request: CreateRequest
    mode: Mode
    account: Account | None
    base_url: str
    created_at: float
    fail_message: str | None = None  # a `fail_tasks` fault: end failed with this message
    status: Status = Status.PENDING
    admitted_at: float | None = None  # when it took a slot (None: queued)
    processing_seconds: float = 0.0  # drawn when it took the slot
    started_at: float | None = None
    ended_at: float | None = None
    output: dict[str, Any] | None = None
    error_message: str = ""
    input_echo: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.input_echo = dict(sorted(self.request.input.items()))

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def output_kind(self) -> OutputKind:
        return output_kind(self.request.task_type)

    @property
    def bot_id(self) -> int:
        return self.account.bot_id if self.account is not None else 0

    @property
    def points(self) -> int:
        return POINTS[self.mode]


def render(task: Task) -> dict[str, Any]:
    request = task.request
    private = task.account is not None
    failed = task.status is Status.FAILED
    return {
        "task_id": task.task_id,
        "model": "midjourney",
        "task_type": request.task_type.value,
        "status": task.status.value,
        "config": {
            "service_mode": "private" if private else "public",
            "webhook_config": {
                "endpoint": request.webhook_endpoint,
                "secret": request.webhook_secret,
            },
        },
        "input": task.input_echo,
        "output": task.output,
        "meta": {
            "created_at": iso(task.created_at),
            "started_at": iso(task.started_at),
            "ended_at": iso(task.ended_at),
            "usage": {
                "type": "point",
                "frozen": task.points,
                "consume": task.points if task.status is Status.COMPLETED else 0,
            },
            "is_using_private_pool": private,
            "model_version": "unknown",
            "process_mode": task.mode.value,
            "failover_triggered": False,
        },
        "detail": None,
        "logs": [],
        "error": {
            "code": FAILED_CODE if failed else 0,
            "raw_message": task.error_message if failed else "",
            "message": task.error_message if failed else "",
            "detail": None,
        },
    }


def received_entry(
    info: dict[str, Any], task: Task | None, error: EmulatorError | None, now: float
) -> dict[str, Any]:
    """The received log's entry for one create: what was sent (`info`), the answer, and where
    the task ran (`effective_bot_id`, `effective_mode`; null when refused)."""
    entry = {"task_id": task.task_id if task else None, **info, "at": now}
    entry["status"] = error.status if error else 200
    entry["message"] = error.message if error else "success"
    entry["effective_bot_id"] = task.bot_id if task else None
    entry["effective_mode"] = task.mode.value if task else None
    return entry
