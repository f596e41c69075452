"""Injected faults: statuses, slow answers, hangs (over a real socket), failed tasks."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from emulator.app import create_app
from emulator.config import EmulatorConfig
from tests.emulator.conftest import KEY, Harness, eventually, serve

IMAGINE = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p"}}


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_status_faults_create_nothing(harness: Harness, status: int) -> None:
    response = await harness.client.post("/_emulator/faults", json={"status": status, "count": 2})
    assert response.json()["faults"]["status"] == [{"status": status, "count": 2}]
    for _ in range(2):
        failed = await harness.post("imagine", prompt="p")
        assert failed.status_code == status
        assert failed.json()["code"] == status and failed.json()["data"] is None
    assert (await harness.post("imagine", prompt="p")).status_code == 200
    assert len(harness.emulator.tasks) == 1
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert [(r["status"], r["task_id"] is None) for r in received] == [
        (status, True),
        (status, True),
        (200, False),
    ]


async def test_a_status_fault_may_carry_retry_after(harness: Harness) -> None:
    fault = {"status": 503, "retry_after": 30, "count": 1}
    shown = (await harness.client.post("/_emulator/faults", json=fault)).json()["faults"]
    assert shown["status"] == [fault]
    failed = await harness.post("imagine", prompt="p")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "30"
    await harness.client.post("/_emulator/faults", json={"status": 503})
    assert "retry-after" not in (await harness.post("imagine", prompt="p")).headers


async def test_faults_add_up_and_clear(harness: Harness) -> None:
    await harness.client.post("/_emulator/faults", json={"status": 500})
    await harness.client.post("/_emulator/faults", json={"status": 429})
    await harness.client.post("/_emulator/faults", json={"hang": 2})
    shown = (await harness.client.get("/_emulator/faults")).json()["faults"]
    assert shown["status"] == [{"status": 500, "count": 1}, {"status": 429, "count": 1}]
    assert shown["hang"] == 2
    assert (await harness.post("imagine", prompt="p")).status_code == 500
    assert (await harness.post("imagine", prompt="p")).status_code == 429
    cleared = (await harness.client.delete("/_emulator/faults")).json()["faults"]
    assert cleared == {"status": [], "slow": [], "hang": 0, "fail_tasks": []}


@pytest.mark.parametrize(
    "body",
    [
        {"status": 418},
        {"count": 2},
        {"slow_seconds": -1},
        {"hang": 0},
        [],
        {"what": 1},
        {"status": 503, "retry_after": -1},
        {"status": 503, "retry_after": 1.5},
        {"status": 503, "retry_after": True},
        {"hang": 1, "retry_after": 5},
    ],
)
async def test_invalid_faults_are_400(harness: Harness, body: object) -> None:
    assert (await harness.client.post("/_emulator/faults", json=body)).status_code == 400


async def test_fail_tasks(harness: Harness) -> None:
    await harness.client.post(
        "/_emulator/faults", json={"fail_tasks": 1, "message": "Banned prompt detected"}
    )
    failed = await harness.finish((await harness.create("imagine", prompt="p"))["task_id"])
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == "Banned prompt detected"
    assert failed["error"]["raw_message"] == "Banned prompt detected"
    assert failed["error"]["code"] != 0
    assert failed["meta"]["usage"]["consume"] == 0
    ok = await harness.finish((await harness.create("imagine", prompt="p"))["task_id"])
    assert ok["status"] == "completed"


async def test_slow_answer_creates_first(harness: Harness) -> None:
    await harness.client.post("/_emulator/faults", json={"slow_seconds": 30, "count": 1})
    pending = asyncio.ensure_future(harness.post("imagine", prompt="p"))
    await eventually(lambda: len(harness.emulator.tasks) == 1, "the slow create to be recorded")
    assert not pending.done()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await harness.client.post("/_emulator/faults", json={"slow_seconds": 0.01, "count": 1})
    assert (await harness.post("imagine", prompt="p")).status_code == 200
    assert (await harness.client.get("/_emulator/faults")).json()["faults"]["slow"] == []


async def test_hang_over_a_real_socket() -> None:
    with serve(create_app(EmulatorConfig(pending_seconds=60))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await client.post("/_emulator/faults", json={"hang": 1})
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/api/v1/task", json=IMAGINE, headers=KEY, timeout=0.3)
            received = (await client.get("/_emulator/received")).json()["received"]
            assert len(received) == 1 and received[0]["status"] == 200
            task_id = received[0]["task_id"]
            task = await client.get(f"/api/v1/task/{task_id}", headers=KEY)
            assert task.json()["data"]["status"] == "pending"  # it was created all the same
            after = await client.post("/api/v1/task", json=IMAGINE, headers=KEY)
            assert after.status_code == 200
