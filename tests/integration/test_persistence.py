"""The embedded Redis keeps everything across restarts: a clean stop (SIGTERM) and a crash of
the whole process group (SIGKILL; writes older than a second survive)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration import serve
from tests.integration.procs import emulator

pytestmark = pytest.mark.slow

ACCOUNTS = [{"bot_id": 801, "plan": "pro"}]


def _create_state(served: serve.Served) -> tuple[str, str]:
    """An account, a managed key and a task; returns (key secret, task id)."""
    put = served.admin("PUT", "/accounts/801", json={"name": "kept", "plan": "pro"})
    assert put.status_code == 201, put.text
    key = served.admin("POST", "/keys", json={"name": "kept-key"})
    assert key.status_code == 201, key.text
    secret = key.json()["data"]["secret"]
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"}}
    task = httpx.post(f"{served.url}/api/v1/task", json=body, headers={"x-api-key": secret},
                      timeout=10)  # fmt: skip
    assert task.status_code == 200, task.text
    return secret, task.json()["data"]["task_id"]


def _assert_state(served: serve.Served, secret: str, task_id: str) -> None:
    account = served.admin("GET", "/accounts/801")
    assert account.status_code == 200 and account.json()["data"]["name"] == "kept"
    keys = served.admin("GET", "/keys").json()["data"]["keys"]
    assert [k["name"] for k in keys] == ["kept-key"]
    task = httpx.get(f"{served.url}/api/v1/task/{task_id}", headers={"x-api-key": secret},
                     timeout=10)  # fmt: skip
    assert task.status_code == 200 and task.json()["data"]["task_id"] == task_id


def _stop_term(served: serve.Served) -> None:
    serve.stop(served, signal.SIGTERM)
    assert served.process.returncode in (0, -signal.SIGTERM)


def _kill_group(served: serve.Served) -> None:
    time.sleep(1.5)  # appendfsync everysec: writes older than a second are on disk
    serve.kill_group(served)


@pytest.mark.parametrize("halt", [_stop_term, _kill_group], ids=["sigterm", "sigkill-group"])
def test_embedded_redis_keeps_everything_across_a_restart(
    tmp_path: Path, halt: Callable[[serve.Served], None]
) -> None:
    with emulator(tmp_path, ACCOUNTS, pending=30, processing=30) as emu:
        env = serve.base_env(tmp_path / "data", serve.ports()[0], GOAPI_API_KEY="integration",
                             GOAPI_BASE_URL=emu.url)  # fmt: skip
        first = serve.start(env, tmp_path / "first.log", path="/healthz")  # no account yet
        try:
            secret, task_id = _create_state(first)
        finally:
            halt(first)
        assert (tmp_path / "data" / "redis" / "appendonly.aof").stat().st_size > 0
        with serve.serving(env, tmp_path / "second.log") as second:
            _assert_state(second, secret, task_id)
