"""Canary secrets: a GoAPI key and a client key that must never appear in a log line, a
response (body or headers) or the metrics exposition, anywhere in the suite.

The in-process harness uses them as its keys; every response it gets (and, but for the admin
API's /notifications, mjgate's GoAPI webhook secret and path tokens) and its final /metrics
scrape are checked as they happen, and every log record mjgate emits during the session is
checked by the handler that tests/conftest.py installs.
"""

from __future__ import annotations

import logging

from gateway.logs import JsonFormatter

CANARY_GOAPI_KEY = "canary-goapi-key-5f1e2d"
CANARY_CLIENT_KEY = "canary-client-key-9a8b7c"
CANARIES = (CANARY_GOAPI_KEY, CANARY_CLIENT_KEY)


class CanaryLeak(AssertionError):
    pass


def check_text(where: str, text: str, extra: tuple[str, ...] = ()) -> None:
    """`extra`: more secrets for this text (mjgate's GoAPI webhook secret and tokens, which
    no client-facing answer may contain)."""
    for canary in (*CANARIES, *extra):
        if canary in text:
            raise CanaryLeak(f"a secret leaked into {where}: {text[:300]!r}")


class CanaryHandler(logging.Handler):
    """Formats every mjgate log record as it would be written and remembers leaks."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.formatter_json = JsonFormatter()
        self.records = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        line = self.formatter_json.format(record)
        if any(canary in line for canary in CANARIES):
            self.leaks.append(line)
