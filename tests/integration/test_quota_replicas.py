"""A key's quota holds across replicas: 200 concurrent creates through two mjgate processes
against a key allowed 50 jobs a day: exactly 50 accepted (reserved or staged), 150 refused
with 429 quota_exceeded, and the remaining-quota headers count down without a repeat."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.procs import ADMIN_TOKEN, emulator, start_gateway, stop

pytestmark = pytest.mark.slow

ACCOUNTS = [{"bot_id": 701, "plan": "pro", "fast_slots": 4, "relax_slots": 2}]
POOL = "accounts:\n  - {bot_id: 701, plan: pro, fast_slots: 4, relax_slots: 2}\n"


def test_a_quota_of_50_jobs_accepts_exactly_50_of_200_through_two_replicas(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=30, processing=30) as emu:
        extra = {"MJGATE_STAGED_LIMIT": "1000"}
        replicas = [
            start_gateway(redis_url, prefix, emu.url, pool_file, extra=extra) for _ in range(2)
        ]
        try:
            admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
            made = httpx.post(
                f"{replicas[0].url}/admin/v1/keys",
                json={"name": "team", "jobs_per_day": 50},
                headers=admin,
                timeout=10,
            )
            assert made.status_code == 201, made.text
            secret = made.json()["data"]["secret"]

            async def run() -> list[httpx.Response]:
                limits = httpx.Limits(max_connections=250)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    body = {"model": "midjourney", "task_type": "imagine"}
                    return await asyncio.gather(
                        *(
                            client.post(
                                f"{replicas[n % 2].url}/api/v1/task",
                                json={**body, "input": {"prompt": f"quota {n} --fast"}},
                                headers={"x-api-key": secret},
                            )
                            for n in range(200)
                        )
                    )

            answers = asyncio.run(run())
            sent = len(emu.received())
        finally:
            for replica in replicas:
                stop(replica.process)
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 50, 429: 150}, statuses
    refused = [a.json()["error"]["type"] for a in answers if a.status_code == 429]
    assert set(refused) == {"quota_exceeded"}
    left = sorted(
        int(a.headers["x-mjgate-quota-remaining-jobs-day"]) for a in answers if a.status_code == 200
    )
    assert left == list(range(50))  # each accepted create saw its own count: none twice
    assert sent <= 4  # the account's fast slots; the rest staged
