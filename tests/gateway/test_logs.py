"""Structured logs: one JSON object per line, request ids, decision and settlement lines."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway import logs
from gateway.logs import LOGGER, JsonFormatter, TextFormatter
from gateway.settings import Settings
from tests.canary import CANARY_CLIENT_KEY, CanaryHandler
from tests.harness import CLIENT_KEY as KEY
from tests.harness import harness


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(JsonFormatter().format(record)))


@pytest.fixture
def collected() -> Collect:
    handler = Collect()
    LOGGER.addHandler(handler)
    yield handler  # type: ignore[misc]
    LOGGER.removeHandler(handler)


async def test_request_id_is_honoured_and_every_line_carries_it(
    redis: Redis, prefix: str, collected: Collect
) -> None:
    async with harness(redis, prefix, emulator_config=EmulatorConfig.instant()) as h:
        answer = await h.create(prompt="x --fast", headers={"x-request-id": "req-abc-123"})
        assert answer.headers["x-request-id"] == "req-abc-123"
        generated = await h.create(prompt="y --fast")
        assert len(generated.headers["x-request-id"]) == 32
    task_id = answer.json()["data"]["task_id"]
    mine = [line for line in collected.lines if line.get("request_id") == "req-abc-123"]
    events = {str(line["event"]) for line in mine}
    assert {"request", "task_created", "task_settled"} <= events
    created = next(line for line in mine if line["event"] == "task_created")
    assert created["task_id"] == task_id and created["decision"] == "routed"
    assert created["mode"] == "fast" and created["requested_mode"] == "fast"
    assert isinstance(created["bot_id"], int)
    request = next(line for line in mine if line["event"] == "request")
    assert request["route"] == "/api/v1/task" and request["status"] == 200


def test_text_format_and_levels() -> None:
    record = logging.LogRecord(
        "mjgate", logging.WARNING, __file__, 1, "account_refused", None, None
    )
    record.fields = {"bot_id": 7}
    assert "account_refused bot_id=7" in TextFormatter().format(record)
    handlers, level = list(LOGGER.handlers), LOGGER.level
    logs.configure_logging("warning", "text")
    try:
        assert LOGGER.level == logging.WARNING
        assert isinstance(LOGGER.handlers[0].formatter, TextFormatter)
    finally:  # give the session's canary handler back
        LOGGER.handlers[:] = handlers
        LOGGER.setLevel(level)


def test_the_http_servers_lines_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn's own warnings (`Invalid HTTP request received.`, with a traceback) were plain
    text among the JSON lines: its loggers take mjgate's handler."""
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
               logging.getLogger(name).propagate)
        for name in (LOGGER.name, *logs.SERVER_LOGGERS)
    }  # fmt: skip
    logs.configure_logging("info", "json")
    try:
        try:
            raise ValueError("bad bytes")
        except ValueError:
            logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.",
                                                       exc_info=True)  # fmt: skip
        logging.getLogger("uvicorn.error").info("below warning: not shown")
        logging.getLogger("asyncio").error("Fatal error on transport")  # the event loop's
        lines = [orjson.loads(x) for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert len(lines) == 2, lines
        assert lines[0]["event"] == "uvicorn_error" and lines[0]["level"] == "warning"
        assert lines[0]["message"] == "Invalid HTTP request received."
        assert "bad bytes" in str(lines[0]["exception"])
        assert lines[1]["event"] == "asyncio" and lines[1]["level"] == "error"
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)


def test_the_canary_check_would_catch_a_leak() -> None:
    handler = CanaryHandler()  # fed directly: the session's own handler must stay clean
    record = logging.LogRecord("mjgate", logging.INFO, __file__, 1, "oops", None, None)
    record.fields = {"key": CANARY_CLIENT_KEY}
    handler.handle(record)
    assert handler.leaks and CANARY_CLIENT_KEY in handler.leaks[0]


async def test_a_cancel_and_a_refused_client_webhook_are_logged(
    redis: Redis, prefix: str, collected: Collect
) -> None:
    """A cancel leaves a line (completions do: task_settled), and a client webhook that fails
    is logged once, on its first failed delivery, with why (the retries are counted)."""
    slow = EmulatorConfig(pending_seconds=30, processing_seconds=30)
    async with harness(redis, prefix, emulator_config=slow) as h:
        body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"},
                "config": {"webhook_config": {"endpoint": "http://127.0.0.1:9/refuse",
                                              "secret": "s"}}}  # fmt: skip
        answer = await h.client.post("/api/v1/task", json=body, headers={"x-api-key": KEY})
        task_id = answer.json()["data"]["task_id"]
        cancelled = await h.client.delete(f"/api/v1/task/{task_id}", headers={"x-api-key": KEY})
        assert cancelled.status_code == 200, cancelled.text
        for _ in range(100):
            if any(line["event"] == "webhook_retrying" for line in collected.lines):
                break
            await asyncio.sleep(0.05)
    lines = {str(line["event"]): line for line in collected.lines}
    assert lines["task_cancelled"]["task_id"] == task_id
    retrying = lines["webhook_retrying"]
    assert retrying["task_id"] == task_id and retrying["reason"] == "status 500"
    assert sum(1 for line in collected.lines if line["event"] == "webhook_retrying") == 1


async def test_a_task_that_may_exist_upstream_and_its_failure_are_logged(
    redis: Redis, prefix: str, collected: Collect
) -> None:
    """A 504 create (the task may exist upstream, holding its slot) leaves task_unconfirmed;
    the failure the reconciler then decides leaves task_failed (found from outside: neither
    left a line)."""
    quick = Settings(lease_seconds=0.5, upstream_timeout=0.5, upstream_connect_timeout=0.2)
    async with harness(redis, prefix, settings=quick, notifications=False) as h:
        await h.emulator.post("/_emulator/faults", json={"status": 504})
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 504
        events = {str(line["event"]): line for line in collected.lines}
        assert events["task_unconfirmed"]["why"] == "upstream 504"
        for _ in range(100):
            await h.gate.tasks.checker.reconcile()
            if any(line["event"] == "task_failed" for line in collected.lines):
                break
            await asyncio.sleep(0.05)
        failed = next(line for line in collected.lines if line["event"] == "task_failed")
        assert failed["error"] == "upstream_outcome_unknown"
