"""What clients see: GoAPI's task object with mjgate's ids and the client's own webhook.

The upstream's task object is copied field for field (key order kept); only the ids
are translated (`task_id`, `input.origin_task_id`, and upstream ids in error messages, see
`gateway.api.redact`), `config.webhook_config` is the client's, never mjgate's, and tasks that
never reached the upstream (staged, failed locally) get an object of the same shape built here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.api.redact import redact_upstream_ids
from gateway.taskrecord import TaskRecord, TaskStatus

ZERO_TIME = "0001-01-01T00:00:00Z"
_NO_ERROR = {"code": 0, "raw_message": "", "message": "", "detail": None}
# mjgate-internal statuses shown to clients as GoAPI's
_CLIENT_STATUS = {TaskStatus.RESERVED: TaskStatus.PENDING, TaskStatus.UNKNOWN: TaskStatus.PENDING}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ZERO_TIME


def client_status(record: TaskRecord) -> str:
    return _CLIENT_STATUS.get(record.status, record.status)


def _webhook(record: TaskRecord) -> dict[str, str]:
    return dict(record.webhook) if record.webhook else {"endpoint": "", "secret": ""}


def _local_object(record: TaskRecord) -> dict[str, Any]:
    request_input = dict(record.request.get("input", {}))
    config = dict(record.request.get("config", {}))
    return {
        "task_id": record.task_id,
        "model": "midjourney",
        "task_type": record.task_type,
        "status": client_status(record),
        "config": {
            "service_mode": config.get("service_mode", ""),
            "webhook_config": _webhook(record),
        },
        "input": request_input,
        "output": None,
        "meta": {
            "created_at": iso(record.created_at),
            "started_at": ZERO_TIME,
            "ended_at": iso(record.updated_at) if record.terminal else ZERO_TIME,
            "usage": {"type": "point", "frozen": 0, "consume": 0},
            "is_using_private_pool": True,
            "model_version": "unknown",
            "process_mode": record.mode or record.requested_mode,
            "failover_triggered": False,
        },
        "detail": None,
        "logs": [],
        "error": dict(_NO_ERROR),
    }


def render(record: TaskRecord) -> dict[str, Any]:
    """The task object a client gets for this record."""
    if record.task is None:
        task = _local_object(record)
    else:
        task = dict(record.task)
        task["task_id"] = record.task_id
        task["status"] = client_status(record)
        task_input = dict(task.get("input") or {})
        if record.parent_id:
            task_input["origin_task_id"] = record.parent_id
        task["input"] = task_input
        config = dict(task.get("config") or {})
        config["webhook_config"] = _webhook(record)
        task["config"] = config
    if record.status == TaskStatus.FAILED and record.error_type:
        task["error"] = {
            **_NO_ERROR,
            **(task.get("error") or {}),
            "message": record.error_message,
            "type": record.error_type,
        }
    error = task.get("error")
    if isinstance(error, dict):
        task["error"] = _redacted(error, record)
    return task


def _redacted(error: dict[str, Any], record: TaskRecord) -> dict[str, Any]:
    """The task's error with upstream ids replaced by mjgate's (or hidden)."""
    mapping = {record.upstream_id: record.task_id} if record.upstream_id else {}
    keep = (record.task_id, record.parent_id or "")
    return {
        key: redact_upstream_ids(value, mapping, keep) if isinstance(value, str) else value
        for key, value in error.items()
    }
