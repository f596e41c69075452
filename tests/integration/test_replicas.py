"""Several mjgate processes sharing one Redis, against the emulator over real sockets.

- 500 concurrent creates through two replicas against a pool with far fewer slots: the emulator
  never sees an account above its slots, fast time is never overspent, every task completes,
  none is lost or run twice.
- A replica killed with SIGKILL while holding reservations and staged tasks: the other replica
  gets the slots back (lease + reconciler) and runs the staged tasks.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.test_metrics import POOL_FAMILIES
from tests.harness import admin_records, check_ran_as_routed
from tests.integration.procs import ADMIN_TOKEN, CLIENT_KEY, emulator, start_gateway, stop

pytestmark = pytest.mark.slow

# fast slots 2, relax slots 1 each; fast time for 40 imagines per account, then relax
IMAGINE_FAST_SECONDS = 60  # GoAPI: a grid is about one fast GPU-minute
ACCOUNTS = [
    {"bot_id": 501, "plan": "pro", "fast_slots": 2, "relax_slots": 1, "fast_seconds": 2400},
    {"bot_id": 502, "plan": "mega", "fast_slots": 2, "relax_slots": 1, "fast_seconds": 2400},
    {"bot_id": 503, "plan": "standard", "fast_slots": 2, "relax_slots": 1, "fast_seconds": 2400},
]
POOL = """strategy: least_busy
accounts:
""" + "".join(
    f"  - {{bot_id: {a['bot_id']}, plan: {a['plan']}, fast_slots: {a['fast_slots']}, "
    f"relax_slots: {a['relax_slots']}, fast_hours_left: {int(a['fast_seconds']) / 3600}}}\n"
    for a in ACCOUNTS
)


async def _create(client: httpx.AsyncClient, url: str, n: int) -> dict[str, Any]:
    """A create as a careful client makes it: an Idempotency-Key, so a retry after a broken
    connection can't create the task twice."""
    body = {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": f"concurrency {n} --fast"},
    }
    headers = {"x-api-key": CLIENT_KEY, "idempotency-key": f"create-{n}"}
    for attempt in range(3):
        try:
            answer = await client.post(f"{url}/api/v1/task", json=body, headers=headers)
            break
        except httpx.TransportError:
            if attempt == 2:
                raise
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def _wait_all(
    client: httpx.AsyncClient, url: str, ids: list[str], timeout: float, *, strict: bool = True
) -> dict[str, dict[str, Any]]:
    """Every task's terminal view (404: "lost"). Past `timeout`: an assertion error, or with
    `strict=False` the tasks still open counted as "stuck"."""
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        if not strict and time.monotonic() >= deadline:
            for task_id in ids:
                done.setdefault(task_id, {"task_id": task_id, "status": "stuck"})
            break
        assert time.monotonic() < deadline, f"{len(ids) - len(done)} tasks never finished"
        pending = [i for i in ids if i not in done][:100]
        answers = await asyncio.gather(
            *(
                client.get(f"{url}/api/v1/task/{i}", headers={"x-api-key": CLIENT_KEY})
                for i in pending
            ),
            return_exceptions=True,
        )
        for task_id, answer in zip(pending, answers, strict=True):
            if isinstance(answer, BaseException) or answer.status_code >= 500:
                continue  # a broken connection, Redis failing over: poll again
            if answer.status_code == 404:  # mjgate lost the task's record (a failover can)
                done[task_id] = {"task_id": task_id, "status": "lost", "error": answer.json()}
                continue
            task = answer.json()["data"]
            if task["status"] in ("completed", "failed"):
                done[task_id] = task
        await asyncio.sleep(0.2)
    return done


def test_500_creates_through_two_replicas(tmp_path: Path, redis_url: str, prefix: str) -> None:
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=0.02, processing=0.08) as emu:
        extra = {"MJGATE_STAGED_LIMIT": "1000"}
        replicas = [
            start_gateway(redis_url, prefix, emu.url, pool_file, extra=extra) for _ in range(2)
        ]
        try:

            async def run() -> dict[str, dict[str, Any]]:
                limits = httpx.Limits(max_connections=300, max_keepalive_connections=0)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    created = await asyncio.gather(
                        *(_create(client, replicas[n % 2].url, n) for n in range(500))
                    )
                    ids = [task["task_id"] for task in created]
                    assert len(set(ids)) == 500
                    return await _wait_all(client, replicas[0].url, ids, timeout=240)

            finished = asyncio.run(run())
            records = admin_records(replicas[1].url, ADMIN_TOKEN, finished)
        finally:
            for replica in replicas:
                stop(replica.process)
        statuses = Counter(task["status"] for task in finished.values())
        assert statuses == {"completed": 500}, statuses
        received = emu.received()
        prompts = Counter(str(r["prompt"]) for r in received)
        assert len(received) == 500 and max(prompts.values()) == 1  # none lost, none twice
        # every task ran on the account and in the mode mjgate decided: the emulator never had
        # to run a task sent as fast in relax for want of fast time
        assert check_ran_as_routed(records, received) == 500
        accounts = emu.accounts()
        sent_fast = Counter(r["bot_id"] for r in received if r["process_mode"] == "fast")
        for spec in ACCOUNTS:
            row = accounts[int(spec["bot_id"])]
            peaks = row["peak_submitted"]
            assert isinstance(peaks, dict)
            assert peaks.get("fast", 0) <= spec["fast_slots"], row
            assert peaks.get("relax", 0) <= spec["relax_slots"], row
            # the fast time mjgate spent on the account, counted from what it sent
            spent = sent_fast[spec["bot_id"]] * IMAGINE_FAST_SECONDS
            assert spent <= float(spec["fast_seconds"]), (spec, spent)  # type: ignore[arg-type]
        modes = Counter(str(r["mode"]) for r in records)
        assert modes["fast"] == sum(sent_fast.values()) and modes["fast"] + modes["relax"] == 500


def test_sigkilled_replica_loses_nothing(tmp_path: Path, redis_url: str, prefix: str) -> None:
    accounts = [{"bot_id": 601, "plan": "pro", "fast_slots": 2, "relax_slots": 1}]
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text("accounts:\n  - {bot_id: 601, plan: pro, fast_slots: 2, relax_slots: 1}\n")
    with emulator(tmp_path, accounts, pending=0.5, processing=0.5) as emu:
        # a short lease, and upstream timeouts short enough that a send fits inside it
        # (gateway.tasks.leasing: the lease covers the upstream's timeouts)
        extra = {
            "MJGATE_LEASE_SECONDS": "2",
            "MJGATE_UPSTREAM_TIMEOUT": "2",
            "MJGATE_UPSTREAM_CONNECT_TIMEOUT": "1",
        }
        # no upstream webhooks: the dead replica's tasks are learnt by the reconciler only
        doomed = start_gateway(redis_url, prefix, emu.url, pool_file, webhooks=False, extra=extra)
        survivor = start_gateway(redis_url, prefix, emu.url, pool_file, webhooks=False, extra=extra)
        try:

            async def run() -> dict[str, dict[str, Any]]:
                async with httpx.AsyncClient(timeout=30) as client:
                    created = await asyncio.gather(
                        *(_create(client, doomed.url, n) for n in range(8))
                    )
                    assert Counter(t["status"] for t in created) == {"pending": 2, "staged": 6}
                    doomed.process.send_signal(signal.SIGKILL)
                    doomed.process.wait()
                    ids = [t["task_id"] for t in created]
                    return await _wait_all(client, survivor.url, ids, timeout=60)

            finished = asyncio.run(run())
            records = admin_records(survivor.url, ADMIN_TOKEN, finished)
        finally:
            stop(doomed.process)
            stop(survivor.process)
        assert Counter(t["status"] for t in finished.values()) == {"completed": 8}
        assert len(emu.received()) == 8
        assert check_ran_as_routed(records, emu.received()) == 8
        peaks = emu.accounts()[601]["peak_submitted"]
        assert isinstance(peaks, dict) and peaks.get("fast", 0) <= 2


POOL_GAUGES = frozenset({*POOL_FAMILIES, "mjgate_store_up"})


def _pool_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in POOL_GAUGES
    }


def test_pool_gauges_agree_across_replicas(tmp_path: Path, redis_url: str, prefix: str) -> None:
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=30, processing=30) as emu:
        replicas = [start_gateway(redis_url, prefix, emu.url, pool_file) for _ in range(2)]
        try:

            async def run() -> None:
                async with httpx.AsyncClient(timeout=30) as client:
                    await asyncio.gather(*(_create(client, replicas[0].url, n) for n in range(10)))

            asyncio.run(run())
            first, second = (_pool_samples(r.url) for r in replicas)
        finally:
            for replica in replicas:
                stop(replica.process)
    assert first == second
    assert first[("mjgate_staged_tasks", ())] == 4  # 6 fast slots, 10 tasks
    in_use = first[("mjgate_pool_slots", (("kind", "in_use"), ("mode", "fast")))]
    assert in_use == 6
