"""Structured logs: one JSON object per line (or readable text), with the request id.

Call `event(name, **fields)`; the request id of the current request (from `x-request-id` or
generated) is added from a context variable. Secrets never reach a log: the only identifying
value of a client is its key id (a hash prefix), and the GoAPI key is never passed here.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

LOGGER = logging.getLogger("mjgate")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        extras = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    line(name, fields, level)


def line(name: str, fields: Mapping[str, object], level: int = logging.INFO) -> None:
    """`event` with its fields as one mapping (built by the caller, e.g. the audit log)."""
    if not LOGGER.isEnabledFor(level):
        return
    rid = request_id.get()
    entry = {"request_id": rid, **fields} if rid else dict(fields)
    LOGGER.log(level, name, extra={"fields": entry})


def exception(name: str, **fields: Any) -> None:
    rid = request_id.get()
    if rid:
        fields = {"request_id": rid, **fields}
    LOGGER.error(name, exc_info=True, extra={"fields": fields})
