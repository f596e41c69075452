"""Control and inspection endpoints, instant mode, configuration and the command line."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulator import cli
from emulator.config import (
    DEMO_ACCOUNTS,
    ConfigError,
    EmulatedAccountSpec,
    EmulatorConfig,
    load_accounts,
)
from tests.emulator.conftest import KEY, START, Harness, MakeHarness


async def test_received_log_records_accepted_and_refused(harness: Harness) -> None:
    task = await harness.create("imagine", prompt="p --fast", process_mode="", bot_id=0)
    await harness.post("upscale", origin_task_id=task["task_id"], index="9")
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert received[0] == {
        "task_id": task["task_id"],
        "task_type": "imagine",
        "bot_id": 0,
        "process_mode": "",
        "prompt": "p --fast",
        "origin_task_id": None,
        "at": START,
        "status": 200,
        "message": "success",
        "effective_bot_id": 0,
        "effective_mode": "fast",
    }
    assert received[1]["task_id"] is None and received[1]["status"] == 400
    assert received[1]["origin_task_id"] == task["task_id"]
    cleared = await harness.client.delete("/_emulator/received")
    assert cleared.json() == {"received": []}


async def test_accounts_replace_and_patch(harness: Harness) -> None:
    specs = [{"bot_id": 5, "plan": "mega", "name": "m"}, {"bot_id": 6, "plan": "basic"}]
    listed = (await harness.client.put("/_emulator/accounts", json=specs)).json()["accounts"]
    assert [(a["bot_id"], a["plan"], a["slots"]) for a in listed] == [
        (5, "mega", {"fast": 12, "relax": 3}),
        (6, "basic", {"fast": 3, "relax": 0}),
    ]
    assert listed[0]["fast_seconds"] == 60 * 3600
    patched = await harness.client.patch(
        "/_emulator/accounts/5", json={"fast_seconds": 0, "setting": "relax"}
    )
    assert patched.json()["fast_seconds"] == 0 and patched.json()["setting"] == "relax"
    task = await harness.create("imagine", prompt="p --fast", bot_id=5)
    assert task["meta"]["process_mode"] == "relax"
    for body in ({"plan": "gold"}, {"fast_slots": -1}, {"colour": "red"}, [1]):
        assert (await harness.client.patch("/_emulator/accounts/5", json=body)).status_code == 400
    assert (await harness.client.patch("/_emulator/accounts/99", json={})).status_code == 404
    for bad in ([{"bot_id": 0}], [{"bot_id": 1}, {"bot_id": 1}], {"x": 1}, [{"plan": "pro"}]):
        assert (await harness.client.put("/_emulator/accounts", json=bad)).status_code == 400


async def test_config_patch_changes_speed(harness: Harness) -> None:
    shown = (await harness.client.get("/_emulator/config")).json()["config"]
    assert shown["pending_seconds"] == 2.0 and shown["instant"] is False
    response = await harness.client.patch(
        "/_emulator/config", json={"pending_seconds": 0, "processing_seconds": 0}
    )
    assert response.json()["config"]["instant"] is True
    assert (await harness.create("imagine", prompt="p"))["status"] == "completed"
    for bad in ({"pending_seconds": -1}, {"speed": 1}, {"progress_steps": 1.5}, [1]):
        assert (await harness.client.patch("/_emulator/config", json=bad)).status_code == 400


async def test_instant_mode_completes_before_answering(make_harness: MakeHarness) -> None:
    harness = await make_harness(
        EmulatorConfig.instant(accounts=(EmulatedAccountSpec(1, "standard", fast_slots=1),))
    )
    tasks_before = len(asyncio.all_tasks())
    for _ in range(20):
        grid = await harness.create("imagine", prompt="p --fast", bot_id=1)
        assert grid["status"] == "completed"
        assert grid["output"]["progress"] == 100
        upscale = await harness.create("upscale", origin_task_id=grid["task_id"], index="2")
        assert upscale["status"] == "completed"
    assert len(harness.emulator.timeline) == 0  # nothing left to schedule
    assert len(asyncio.all_tasks()) == tasks_before  # no asyncio task per task
    account = await harness.account(1)
    assert account["peak_in_flight"]["fast"] == 1 and account["peak_submitted"]["fast"] == 1
    assert account["completed"] == 40


async def test_health_and_reset(harness: Harness) -> None:
    assert (await harness.client.get("/_emulator/health")).json() == {"ok": True}
    await harness.create("imagine", prompt="p")
    assert (await harness.client.post("/_emulator/reset")).json() == {"reset": True}
    assert harness.emulator.tasks == {}


def test_specs_validate() -> None:
    assert EmulatedAccountSpec(1, "basic").slots() == (3, 0)
    assert EmulatedAccountSpec(1, "pro", fast_slots=2).slots() == (2, 3)
    for bad in (
        {"bot_id": 0},
        {"bot_id": 1, "plan": "gold"},
        {"bot_id": 1, "setting": "turbo"},
        {"bot_id": 1, "fast_seconds": -5},
        {"bot_id": 1, "relax_slots": -1},
    ):
        with pytest.raises(ConfigError):
            EmulatedAccountSpec(**bad)
    with pytest.raises(ConfigError):
        EmulatorConfig(pending_seconds=-1)
    assert [a.bot_id for a in DEMO_ACCOUNTS] == [1001, 1002, 1003, 1004]
    assert [a.plan for a in DEMO_ACCOUNTS] == ["basic", "standard", "pro", "mega"]
    assert EmulatorConfig.sandbox().accounts == DEMO_ACCOUNTS
    assert EmulatorConfig.instant().is_instant


def test_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"bot_id": 3, "plan": "pro", "fast_seconds": 9}]}))
    assert load_accounts(str(path)) == (EmulatedAccountSpec(3, "pro", fast_seconds=9),)
    assert load_accounts("demo") == DEMO_ACCOUNTS
    path.write_text("[{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_accounts(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_accounts(str(tmp_path / "missing.json"))


def test_cli_options_build_the_config(tmp_path: Path) -> None:
    args = cli.parser().parse_args(
        [
            "--instant",
            "--api-key",
            "k",
            "--accounts",
            "demo",
            "--notifications-url",
            "http://127.0.0.1:9/n",
        ]
    )
    config = cli.build_config(args)
    assert config.is_instant and config.api_key == "k" and config.accounts == DEMO_ACCOUNTS
    assert config.notifications_url == "http://127.0.0.1:9/n"
    slow = cli.build_config(cli.parser().parse_args(["--pending-seconds", "0.5"]))
    assert slow.pending_seconds == 0.5 and slow.processing_seconds == 4.0 and slow.accounts == ()
    assert cli.main(["--accounts", str(tmp_path / "missing.json")]) == 2


@pytest.mark.slow
def test_python_dash_m_emulator_serves() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--instant", "--accounts", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/_emulator/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p --fast"}}
        created = httpx.post(f"{url}/api/v1/task", json=body, headers=KEY).json()["data"]
        assert created["status"] == "completed" and created["meta"]["is_using_private_pool"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert b"GoAPI emulator on" in output


async def test_finished_tasks_beyond_max_tasks_are_forgotten_with_their_gets(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(EmulatorConfig.instant(), max_tasks=3)
    ids = [(await harness.create("imagine", prompt=f"p{n}"))["task_id"] for n in range(6)]
    for task_id in ids[-3:]:
        await harness.get(task_id)
    await harness.create("imagine", prompt="one more")  # evicts the oldest finished task
    assert set(harness.emulator.tasks) >= set(ids[-2:]) and len(harness.emulator.tasks) == 3
    assert set(harness.emulator.gets) == set(ids[-2:])
    listed = (await harness.client.get("/_emulator/tasks")).json()["tasks"]
    assert {row["task_id"] for row in listed} == set(harness.emulator.tasks)
