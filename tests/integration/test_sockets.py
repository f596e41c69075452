"""The client flow over real sockets: a GoAPI client pointed at mjgate, mjgate at the emulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import admin_records, check_ran_as_routed
from tests.integration.procs import ADMIN_TOKEN, CLIENT_KEY, emulator, start_gateway, stop

pytestmark = pytest.mark.slow

HEADERS = {"x-api-key": CLIENT_KEY}


def wait(client: httpx.Client, task_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/api/v1/task/{task_id}").json()["data"]
        if task["status"] == status:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{task_id} never reached {status}")


def test_imagine_upscale_variation_cancel(tmp_path: Path, redis_url: str, prefix: str) -> None:
    accounts = [{"bot_id": 11, "plan": "standard"}, {"bot_id": 12, "plan": "pro"}]
    pool = tmp_path / "pool.yaml"
    pool.write_text("accounts:\n  - {bot_id: 11, plan: standard}\n  - {bot_id: 12, plan: pro}\n")
    with emulator(tmp_path, accounts, pending=0.3, processing=0.6) as emu:
        gate = start_gateway(redis_url, prefix, emu.url, pool)
        try:
            with httpx.Client(base_url=gate.url, headers=HEADERS, timeout=10) as client:
                created = client.post(
                    "/api/v1/task",
                    json={
                        "model": "midjourney",
                        "task_type": "imagine",
                        "input": {"prompt": "a red fox --relax", "aspect_ratio": "3:2"},
                    },
                )
                assert created.status_code == 200, created.text
                assert created.headers["x-mjgate-mode"] == "relax"
                task = created.json()["data"]
                done = wait(client, task["task_id"], "completed")
                assert done["meta"]["process_mode"] == "relax"
                assert len(done["output"]["temporary_image_urls"]) == 4
                image = httpx.get(done["output"]["image_url"])
                assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

                upscale = client.post(
                    "/api/v1/task",
                    json={
                        "model": "midjourney",
                        "task_type": "upscale",
                        "input": {"origin_task_id": task["task_id"], "index": "3"},
                    },
                )
                assert upscale.headers["x-mjgate-bot-id"] == created.headers["x-mjgate-bot-id"]
                assert upscale.headers["x-mjgate-mode"] == "relax"
                up = wait(client, upscale.json()["data"]["task_id"], "completed")
                assert up["input"]["origin_task_id"] == task["task_id"]

                variation = client.post(
                    "/api/v1/task",
                    json={
                        "model": "midjourney",
                        "task_type": "variation",
                        "input": {"origin_task_id": task["task_id"], "index": "2"},
                    },
                )
                wait(client, variation.json()["data"]["task_id"], "completed")

                pending = client.post(
                    "/api/v1/task",
                    json={
                        "model": "midjourney",
                        "task_type": "imagine",
                        "input": {"prompt": "to be cancelled --fast"},
                    },
                ).json()["data"]
                cancel = client.delete(f"/api/v1/task/{pending['task_id']}")
                assert cancel.status_code == 200, cancel.text
                assert (
                    client.get(f"/api/v1/task/{pending['task_id']}").json()["data"]["status"]
                    == "failed"
                )
            ids = [task["task_id"], up["task_id"], variation.json()["data"]["task_id"]]
            records = admin_records(gate.url, ADMIN_TOKEN, [*ids, pending["task_id"]])
        finally:
            stop(gate.process)
        kinds = [r["task_type"] for r in emu.received()]
        assert kinds == ["imagine", "upscale", "variation", "imagine"]
        assert check_ran_as_routed(records, emu.received()) == 4


def test_timeout_after_sending_over_real_sockets(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """The emulator takes the create and never answers: 504, and it is not sent again."""
    pool = tmp_path / "pool.yaml"
    pool.write_text("accounts:\n  - {bot_id: 21, plan: pro}\n  - {bot_id: 22, plan: pro}\n")
    accounts = [{"bot_id": 21, "plan": "pro"}, {"bot_id": 22, "plan": "pro"}]
    with emulator(tmp_path, accounts, pending=0.2, processing=0.2) as emu:
        gate = start_gateway(
            redis_url, prefix, emu.url, pool, extra={"MJGATE_UPSTREAM_TIMEOUT": "1"}
        )
        try:
            httpx.post(f"{emu.url}/_emulator/faults", json={"hang": 1})
            with httpx.Client(base_url=gate.url, headers=HEADERS, timeout=10) as client:
                answer = client.post(
                    "/api/v1/task",
                    json={
                        "model": "midjourney",
                        "task_type": "imagine",
                        "input": {"prompt": "a slow one --fast"},
                    },
                )
                assert answer.status_code == 504, answer.text
                assert answer.json()["error"]["type"] == "upstream_timeout"
        finally:
            stop(gate.process)
        assert len(emu.received()) == 1


def test_a_5xx_create_over_real_sockets(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """The emulator answers the create 503 (and creates nothing): 502 `upstream_unavailable`
    with Retry-After, not sent to the other account, nothing held: the next create runs."""
    pool = tmp_path / "pool.yaml"
    pool.write_text("accounts:\n  - {bot_id: 31, plan: pro}\n  - {bot_id: 32, plan: pro}\n")
    accounts = [{"bot_id": 31, "plan": "pro"}, {"bot_id": 32, "plan": "pro"}]
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"}}
    with emulator(tmp_path, accounts, pending=0.2, processing=0.2) as emu:
        gate = start_gateway(redis_url, prefix, emu.url, pool)
        try:
            httpx.post(f"{emu.url}/_emulator/faults", json={"status": 503})
            with httpx.Client(base_url=gate.url, headers=HEADERS, timeout=10) as client:
                answer = client.post("/api/v1/task", json=body)
                assert answer.status_code == 502, answer.text
                error = answer.json()["error"]
                assert error["type"] == "upstream_unavailable" and error["upstream_status"] == 503
                assert answer.headers["retry-after"] == "5"
                assert [r["status"] for r in emu.received()] == [503]
                again = client.post("/api/v1/task", json=body)
                assert again.status_code == 200, again.text
        finally:
            stop(gate.process)
        assert [r["status"] for r in emu.received()] == [503, 200]


def test_a_503_with_retry_after_over_real_sockets(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """GoAPI's 503 says to come back in 2 s: the create that heard it is released (502), the
    next is refused before reaching the upstream (503 with the wait left), and once the wait
    is over the next create goes up again."""
    pool = tmp_path / "pool.yaml"
    pool.write_text("accounts:\n  - {bot_id: 31, plan: pro}\n")
    accounts = [{"bot_id": 31, "plan": "pro"}]
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"}}
    with emulator(tmp_path, accounts, pending=0.2, processing=0.2) as emu:
        gate = start_gateway(redis_url, prefix, emu.url, pool)
        try:
            httpx.post(f"{emu.url}/_emulator/faults", json={"status": 503, "retry_after": 2})
            with httpx.Client(base_url=gate.url, headers=HEADERS, timeout=10) as client:
                heard = client.post("/api/v1/task", json=body)
                assert heard.status_code == 502, heard.text
                assert heard.headers["retry-after"] == "2"
                paused = client.post("/api/v1/task", json=body)
                assert paused.status_code == 503, paused.text
                assert paused.json()["error"]["type"] == "upstream_unavailable"
                assert paused.headers["retry-after"] in ("1", "2")
                assert [r["status"] for r in emu.received()] == [503]
                time.sleep(float(paused.headers["retry-after"]) + 0.2)
                again = client.post("/api/v1/task", json=body)
                assert again.status_code == 200, again.text
        finally:
            stop(gate.process)
        assert [r["status"] for r in emu.received()] == [503, 200]
