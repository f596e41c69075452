"""`mjgate serve` against a Redis server of its own that hangs, dies and comes back empty:
/readyz turns not ready within a probe period, and the empty store is detected, logged and
refilled from the pool file."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration import serve
from tests.integration.procs import CLIENT_KEY, emulator, free_port

pytestmark = pytest.mark.slow

ACCOUNTS = [{"bot_id": 971, "plan": "pro"}]
POOL = "accounts:\n  - {bot_id: 971, plan: pro}\n"
PROBE_PERIOD = 2.0  # seconds: a readiness probe's period, as a load balancer would use


def _redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            import redis

            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return process
        except Exception:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    processes = [_redis(port, tmp_path / "redis")]
    yield port, processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()


def _ready(served: serve.Served) -> tuple[int, list[str]]:
    answer = httpx.get(f"{served.url}/readyz", timeout=5)
    return answer.status_code, answer.json()["reasons"]


def _until_not_ready(served: serve.Served, what: str) -> list[str]:
    started = time.monotonic()
    while (result := _ready(served))[0] == 200:
        assert time.monotonic() - started < PROBE_PERIOD, f"still ready {what}"
        time.sleep(0.1)
    return result[1]


def test_outage_and_an_empty_restart(
    tmp_path: Path, private_redis: tuple[int, list[subprocess.Popen[bytes]]]
) -> None:
    port, processes = private_redis
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    with emulator(tmp_path, ACCOUNTS, pending=0.2, processing=0.2) as emu:
        env = serve.base_env(
            tmp_path / "data", serve.ports()[0], REDIS_URL=f"redis://127.0.0.1:{port}/0",
            GOAPI_API_KEY="integration", GOAPI_BASE_URL=emu.url, MJGATE_POOL_FILE=str(pool),
            MJGATE_RECONCILE_INTERVAL="0.5")  # fmt: skip
        with serve.serving(env, tmp_path / "serve.log") as served:
            assert _ready(served)[0] == 200
            processes[0].send_signal(signal.SIGSTOP)  # hangs: connections open, no answers
            assert "redis unreachable" in _until_not_ready(served, "while Redis hangs")[0]
            processes[0].send_signal(signal.SIGCONT)
            processes[0].kill()  # gone: connections refused
            processes[0].wait()
            assert "redis unreachable" in _ready(served)[1][0]

            processes.append(_redis(port, tmp_path / "redis"))  # back, empty
            deadline = time.monotonic() + 15
            while _ready(served)[0] != 200:
                assert time.monotonic() < deadline, (_ready(served), served.text()[-2000:])
                time.sleep(0.2)
            events = served.events()
            reset = [e for e in events if e["event"] == "store_reset"]
            assert len(reset) == 1 and reset[0]["level"] == "error"
            assert [e["bot_id"] for e in events if e["event"] == "pool_change"
                    and e["why"] == "store_reset"] == [971]  # fmt: skip
            body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"}}
            created = httpx.post(f"{served.url}/api/v1/task", json=body, timeout=10,
                                 headers={"x-api-key": CLIENT_KEY})  # fmt: skip
            assert created.status_code == 200, created.text
