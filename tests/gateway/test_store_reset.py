"""A store reset under a running service (Redis flushed, or restarted without persistence):
detected by the epoch, logged as an error, the pool file applied again; while the pool has no
account, creates answer 503 `pool_empty` and /readyz is not ready with that reason."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from gateway.logs import LOGGER, JsonFormatter
from gateway.settings import Settings
from gateway.startup import check_epoch
from tests.harness import DEMO, harness

POOL = """\
accounts:
  - {bot_id: 1003, name: pro, plan: pro}
  - {bot_id: 1004, name: mega, plan: mega}
"""


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(JsonFormatter().format(record)))

    def named(self, event: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line["event"] == event]


@pytest.fixture
def collected() -> Collect:
    handler = Collect()
    LOGGER.addHandler(handler)
    yield handler  # type: ignore[misc]
    LOGGER.removeHandler(handler)


async def _wipe(redis: Redis, prefix: str) -> None:
    """What FLUSHDB does to this test's keys (the shared server is never flushed)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


async def _until(what: str, check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def error_type(answer: object) -> str:
    return str(answer.json()["error"]["type"])  # type: ignore[attr-defined]


async def test_reset_without_pool_file_is_pool_empty_and_not_ready(
    redis: Redis, prefix: str, collected: Collect
) -> None:
    async with harness(redis, prefix) as h:
        assert (await h.client.get("/readyz")).status_code == 200
        await _wipe(redis, prefix)

        async def logged() -> bool:
            return bool(collected.named("store_reset"))

        await _until("the reset was never logged", logged)
        line = collected.named("store_reset")[0]
        assert line["level"] == "error" and line["accounts"] == 0
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 503 and error_type(answer) == "pool_empty"
        assert answer.headers["retry-after"]
        ready = await h.client.get("/readyz")
        assert ready.status_code == 503
        assert any("pool_empty" in reason for reason in ready.json()["reasons"])
        await asyncio.sleep(3 * h.settings.reconcile_interval)
        assert len(collected.named("store_reset")) == 1  # logged once, not at every check


async def test_reset_with_pool_file_applies_it_again(
    redis: Redis, prefix: str, tmp_path: Path, collected: Collect
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    settings = Settings(pool_file=pool)
    async with harness(redis, prefix, accounts=DEMO[2:], settings=settings) as h:
        await _wipe(redis, prefix)

        async def reapplied() -> bool:
            return len(await h.gate.catalog.list_accounts()) == 2

        await _until("the pool file was not applied again", reapplied)
        assert [c["bot_id"] for c in collected.named("pool_change") if c["why"] == "store_reset"
                ] == [1003, 1004]  # fmt: skip
        assert (await h.create(prompt="x --fast")).status_code == 200
        assert (await h.client.get("/readyz")).status_code == 200


async def test_an_empty_pool_is_pool_empty_from_the_start(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, accounts=()) as h:
        answer = await h.create(prompt="x --relax")
        assert answer.status_code == 503 and error_type(answer) == "pool_empty"
        ready = await h.client.get("/readyz")
        assert ready.status_code == 503 and "pool_empty" in ready.json()["reasons"][0]


async def test_readyz_not_ready_within_the_redis_timeout_while_redis_hangs(
    tmp_path: Path, prefix: str
) -> None:
    """A Redis that stops answering (SIGSTOP: connections open, no replies)."""
    import os
    import signal
    import tempfile

    from gateway.app import redis_client
    from gateway.local.embedded import EmbeddedRedis

    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjz")))
    url = server.start()
    client = redis_client(Settings(redis_url=url))
    try:
        async with harness(client, prefix) as h:
            assert (await h.client.get("/readyz")).status_code == 200
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                ready = await h.client.get("/readyz")
                assert ready.status_code == 503
                assert time.monotonic() - started < 2 * h.settings.redis_timeout + 0.5
                # a create: its clean-up (record, open index, key) does not hold up its 503,
                # which took three timeouts in a row before (about 1.2 s)
                for headers in (None, {"idempotency-key": "frozen-1"}):
                    started = time.monotonic()
                    answer = await h.create(prompt="x --fast", headers=headers)
                    took = time.monotonic() - started
                    assert answer.status_code == 503, answer.text
                    assert took < 2 * h.settings.redis_timeout, took
            finally:
                os.kill(server.pid, signal.SIGCONT)
    finally:
        server.stop()
        await client.aclose()


async def test_a_reset_whose_reload_failed_is_not_logged_again(
    redis: Redis, prefix: str, collected: Collect
) -> None:
    """Found by CI on a slow machine: Redis back empty, the first reload failed (the epoch is
    written after the scripts are loaded), and the next check logged `store_reset` again. A
    reset logged whose reload has not succeeded yet (`reloading`) is only loaded again."""
    async with harness(redis, prefix) as h:
        h.gate.reloading = True  # as left by a check whose reload raised StoreError
        await _wipe(redis, prefix)

        async def marked() -> bool:
            return await redis.hget(h.gate.store.keys.pool_meta(), "epoch") is not None

        await _until("the store was never loaded again", marked)
        assert await check_epoch(h.gate) is False
        assert collected.named("store_reset") == [] and not h.gate.reloading
        await _wipe(redis, prefix)  # a new reset: logged
        await _until("the store was never loaded again", marked)
        assert len(collected.named("store_reset")) == 1
