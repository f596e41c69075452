"""Completion tracking over real sockets and processes: no webhooks, clients that never poll.
Every slot is freed within the tracking interval of the task's end; two replicas never check
one task at once; a SIGKILLed replica's tasks are tracked to the end by the other."""

from __future__ import annotations

import asyncio
import itertools
import math
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis as redis_sync

from gateway.taskrecord import TaskRecord
from routing.keys import Keys
from tests.integration.procs import CLIENT_KEY, emulator, start_gateway, stop

INTERVAL = 0.3
TASK_SECONDS = 1.0  # pending 0.5 + processing 0.5
ACCOUNTS = [{"bot_id": 701, "plan": "pro", "fast_slots": 2, "relax_slots": 0},
            {"bot_id": 702, "plan": "pro", "fast_slots": 2, "relax_slots": 0}]  # fmt: skip
POOL = (
    "accounts:\n"
    "  - {bot_id: 701, plan: pro, fast_slots: 2, relax_slots: 0}\n"
    "  - {bot_id: 702, plan: pro, fast_slots: 2, relax_slots: 0}\n"
)
EXTRA = {"MJGATE_TRACK_INTERVAL": str(INTERVAL), "MJGATE_STAGED_LIMIT": "1000"}


def _records(redis_url: str, prefix: str, ids: list[str]) -> dict[str, TaskRecord | None]:
    keys = Keys(prefix)
    client = redis_sync.Redis.from_url(redis_url)
    try:
        out: dict[str, TaskRecord | None] = {}
        for task_id in ids:
            status, blob = client.hmget(keys.task(task_id), "s", "d")
            out[task_id] = (
                TaskRecord.decode(task_id, status.decode(), blob) if status and blob else None
            )
        return out
    finally:
        client.close()


def _wait_terminal(
    redis_url: str, prefix: str, ids: list[str], timeout: float
) -> dict[str, TaskRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = _records(redis_url, prefix, ids)
        if all(r is not None and r.terminal for r in records.values()):
            return {k: v for k, v in records.items() if v is not None}
        assert time.monotonic() < deadline, Counter(r and r.status for r in records.values())
        time.sleep(0.1)


async def _burst(urls: list[str], count: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(n: int) -> dict[str, Any]:
            body = {"model": "midjourney", "task_type": "imagine",
                    "input": {"prompt": f"burst {n} --fast"}}  # fmt: skip
            answer = await client.post(
                f"{urls[n % len(urls)]}/api/v1/task", json=body, headers={"x-api-key": CLIENT_KEY}
            )
            assert answer.status_code == 200, answer.text
            data: dict[str, Any] = answer.json()["data"]
            return data

        return await asyncio.gather(*(one(n) for n in range(count)))


def _upstream_tasks(url: str) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{url}/_emulator/tasks", timeout=10).json()["tasks"]
    return {row["task_id"]: row for row in rows}


def test_no_webhooks_no_polls_slots_free_within_the_interval(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    (tmp_path / "pool.yaml").write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=0.5, processing=0.5) as emu:
        gateway = start_gateway(
            redis_url, prefix, emu.url, tmp_path / "pool.yaml", webhooks=False, extra=EXTRA
        )
        try:
            created = asyncio.run(_burst([gateway.url], 16))
            ids = [task["task_id"] for task in created]
            records = _wait_terminal(redis_url, prefix, ids, timeout=60)
        finally:
            stop(gateway.process)
        upstream = _upstream_tasks(emu.url)
        dead = []
        for record in records.values():
            assert record.status == "completed"
            ended = upstream[record.upstream_id or ""]["ended_at"]
            settled = next(e["at"] for e in record.history if e["what"] == "completed")
            dead.append(settled - ended)
        assert max(dead) < INTERVAL + 0.3, sorted(dead)
        peaks = emu.accounts()
        assert all(peaks[a["bot_id"]]["peak_submitted"].get("fast", 0) <= 2 for a in ACCOUNTS)


def test_two_replicas_never_check_one_task_at_once_and_survive_a_sigkill(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    (tmp_path / "pool.yaml").write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=0.5, processing=0.5) as emu:
        replicas = [
            start_gateway(
                redis_url, prefix, emu.url, tmp_path / "pool.yaml", webhooks=False, extra=EXTRA
            )
            for _ in range(2)
        ]
        try:
            created = asyncio.run(_burst([r.url for r in replicas], 24))
            ids = [task["task_id"] for task in created]
            time.sleep(1.5)
            replicas[0].process.send_signal(signal.SIGKILL)  # mid-burst, holding claims
            replicas[0].process.wait()
            records = _wait_terminal(redis_url, prefix, ids, timeout=90)
        finally:
            for replica in replicas:
                stop(replica.process)
        assert Counter(r.status for r in records.values()) == {"completed": 24}
        upstream = _upstream_tasks(emu.url)
        assert len(emu.received()) == 24  # none sent twice
        per_task = []
        for record in records.values():
            gets = sorted(upstream[record.upstream_id or ""]["gets"])
            per_task.append(len(gets))
            gaps = [b - a for a, b in itertools.pairwise(gets)]
            # never two at once: a claim (or a poll's take) holds the task until its answer;
            # planned checks are at least 50 ms apart
            assert all(gap > 0.04 for gap in gaps), gets
        # a task of T seconds checked every INTERVAL needs at most T / INTERVAL + 2 GETs; the
        # dead replica's claims cost its tasks one claim period of waiting, not more GETs
        assert max(per_task) <= math.ceil(TASK_SECONDS / INTERVAL) + 2, per_task
        accounts = emu.accounts()
        for spec in ACCOUNTS:
            peaks = accounts[int(spec["bot_id"])]["peak_submitted"]
            assert isinstance(peaks, dict) and peaks.get("fast", 0) <= 2
