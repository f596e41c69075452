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


# the HTTP server's and the event loop's own loggers, given mjgate's handler: in JSON mode
# every line is JSON (asyncio reports a transport's fatal errors there)
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "asyncio")


def _event_of(record: logging.LogRecord) -> dict[str, Any]:
    """mjgate's records name their event; another library's say a sentence: its logger
    names the event (`uvicorn_error`) and the sentence is the `message`."""
    if record.name == LOGGER.name:
        return {"event": record.getMessage()}
    return {"event": record.name.replace(".", "_"), "message": record.getMessage()}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            **_event_of(record),
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
    """mjgate's logger, and the HTTP server's (run with `log_config=None`, so it keeps
    these), on one handler and format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False
    for name in SERVER_LOGGERS:
        server = logging.getLogger(name)
        server.handlers[:] = [handler]
        server.setLevel(max(logging.WARNING, LOGGER.level))
        server.propagate = False


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
