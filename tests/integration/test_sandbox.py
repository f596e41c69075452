"""`mjgate serve` in sandbox mode through its own wiring (a subprocess, real sockets): account
notifications from the emulator arrive, the children die with it, a start stops the leftovers
of a crashed run, and what it says when it starts and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.local import children
from gateway.local.embedded import EmbeddedRedis
from tests.integration import serve
from tests.integration.procs import BIN, wait_http

pytestmark = pytest.mark.slow


def _sandbox_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    port, emulator_port = serve.ports()
    env = serve.base_env(tmp_path / "data", port, MJGATE_SANDBOX_EMULATOR_PORT=str(emulator_port),
                         MJGATE_SANDBOX_SPEED="instant", **extra)  # fmt: skip
    del env["MJGATE_ADMIN_TOKEN"]  # the sandbox's own token
    return env


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[serve.Served]:
    served = serve.start(_sandbox_env(tmp_path), tmp_path / "serve.log")
    try:
        yield served
    finally:
        serve.stop(served)


def _sandbox_admin(served: serve.Served, path: str) -> httpx.Response:
    return httpx.get(f"{served.url}/admin/v1{path}", timeout=10,
                     headers={"authorization": "Bearer sandbox-admin-token"})  # fmt: skip


def _state(served: serve.Served, bot_id: int) -> str:
    return str(_sandbox_admin(served, f"/accounts/{bot_id}").json()["data"]["state"])


def test_account_notifications_from_the_emulator_arrive(sandbox: serve.Served) -> None:
    emulator = f"http://127.0.0.1:{serve_port(sandbox)}"
    assert _state(sandbox, 1003) == "active" and _state(sandbox, 1002) == "active"
    captcha = httpx.post(f"{emulator}/_emulator/accounts/1003/captcha", timeout=10)
    assert captcha.status_code == 200, captcha.text
    until = int(time.time()) + 3600
    ban = httpx.post(f"{emulator}/_emulator/accounts/1002/ban", timeout=10,
                     json={"block_until": until, "reason": "tos"})  # fmt: skip
    assert ban.status_code == 200, ban.text
    deadline = time.monotonic() + 10
    while (_state(sandbox, 1003), _state(sandbox, 1002)) != ("paused", "cooling"):
        assert time.monotonic() < deadline, (_state(sandbox, 1003), _state(sandbox, 1002))
        time.sleep(0.1)
    shown = _sandbox_admin(sandbox, "/accounts/1003").json()["data"]
    assert shown["state_reason"].startswith("goapi:")
    # what let them in (the path token, the secret) went through the emulator's environment:
    # its command line, which `ps` shows every user, carries neither
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in sandbox.children()]
    emulator = next(command for command in commands if b"emulator" in command)
    assert b"notifications" not in emulator and b"secret" not in emulator, emulator


def serve_port(served: serve.Served) -> int:
    """The sandbox emulator's port, from the served process's environment."""
    environ = Path(f"/proc/{served.process.pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"MJGATE_SANDBOX_EMULATOR_PORT="):
            return int(entry.split(b"=", 1)[1])
    raise AssertionError("no emulator port")


def test_children_die_when_serve_is_killed(sandbox: serve.Served) -> None:
    kids = sandbox.children()
    assert len(kids) == 2  # the embedded Redis and the emulator
    os.kill(sandbox.process.pid, signal.SIGKILL)  # mjgate serve only, not its group
    sandbox.process.wait()
    for pid in kids:
        assert serve.gone(pid), f"child {pid} outlived mjgate serve"


def test_a_start_stops_the_leftovers_of_a_crashed_run(tmp_path: Path) -> None:
    env = _sandbox_env(tmp_path)
    data = tmp_path / "data"
    # what a crash of an older mjgate leaves: a Redis server of this data folder and an
    # emulator on the sandbox port, with their pid files, not children of the next start
    embedded = EmbeddedRedis((data / "redis").resolve())
    embedded.data_dir.mkdir(parents=True)
    orphan_redis = subprocess.Popen(embedded.command(), stdout=subprocess.DEVNULL)
    children.write_pid(embedded.pid_file, orphan_redis.pid)
    port = env["MJGATE_SANDBOX_EMULATOR_PORT"]
    orphan_emulator = subprocess.Popen([sys.executable, "-m", "emulator", "--port", port])
    children.write_pid(data.resolve() / "sandbox-emulator.pid", orphan_emulator.pid)
    try:
        wait_http(f"http://127.0.0.1:{port}/_emulator/accounts", orphan_emulator)
        with serve.serving(env, tmp_path / "serve.log") as served:
            assert orphan_redis.wait(10) is not None and orphan_emulator.wait(10) is not None
            events = {e["event"]: e for e in served.events()}
            assert events["embedded_redis_stale_stopped"]["pid"] == orphan_redis.pid
            assert events["sandbox_emulator_stale_stopped"]["pid"] == orphan_emulator.pid
            assert len(served.children()) == 2
            assert _state(served, 1001) == "active"
    finally:
        for process in (orphan_redis, orphan_emulator):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_port_taken_by_something_else_stops_the_start(tmp_path: Path) -> None:
    env = _sandbox_env(tmp_path)
    port = env["MJGATE_SANDBOX_EMULATOR_PORT"]
    foreign = subprocess.Popen([sys.executable, "-m", "emulator", "--port", port])
    try:
        wait_http(f"http://127.0.0.1:{port}/_emulator/accounts", foreign)
        served = serve.start(env, tmp_path / "serve.log", ready=False)
        assert served.process.wait(30) == 1
        assert f"port {port} (MJGATE_SANDBOX_EMULATOR_PORT) is already in use" in served.text()
        assert foreign.poll() is None  # not ours: left alone
    finally:
        foreign.terminate()
        foreign.wait()


def test_start_and_stop_are_announced(tmp_path: Path) -> None:
    served = serve.start(_sandbox_env(tmp_path), tmp_path / "serve.log")
    serve.stop(served)
    text = served.text()
    for line in (
        "Admin API:        http://127.0.0.1:",
        "token sandbox-admin-token",
        "Operator CLI:     MJGATE_ADMIN_TOKEN=sandbox-admin-token",
        "mjgate accounts list",
        f"mjgate: listening on 127.0.0.1:{served.url.rsplit(':', 1)[1]}",
        "upstream:  sandbox emulator at http://127.0.0.1:",
        f"redis:     embedded, data in {(tmp_path / 'data' / 'redis').resolve()}",
        "admin API: on at",
        "/metrics",
        "mjgate: stopped",
    ):
        assert line in text, line


def test_real_key_mode_names_redis_without_its_password(tmp_path: Path, redis_url: str) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("needs a TCP Redis URL")
    with_password = redis_url.replace("redis://", "redis://user:hunter22@", 1)
    env = serve.base_env(tmp_path / "data", serve.ports()[0], GOAPI_API_KEY="integration",
                         GOAPI_BASE_URL="http://127.0.0.1:9", REDIS_URL=with_password,
                         MJGATE_ADMIN_TOKEN="")  # fmt: skip
    served = serve.start(env, tmp_path / "serve.log", ready=False)
    serve.stop(served)
    text = served.text()
    assert "hunter22" not in text and "user:***@" in text
    assert "upstream:  GoAPI at http://127.0.0.1:9" in text
    assert "admin API: off (set MJGATE_ADMIN_TOKEN to turn it on)" in text


def run_mjgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "mjgate"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_a_pool_file_that_does_not_load_stops_serve(tmp_path: Path) -> None:
    bad = tmp_path / "pool.yaml"
    bad.write_text("accounts:\n  - bot_id: 1\n    plan: gold\n")
    env = _sandbox_env(tmp_path, MJGATE_POOL_FILE=str(bad))
    result = run_mjgate("serve", env=env)
    assert result.returncode == 2
    assert f"pool file {bad}: line 3: expected one of" in result.stderr
    missing = _sandbox_env(tmp_path, MJGATE_POOL_FILE=str(tmp_path / "nope.yaml"))
    result = run_mjgate("serve", env=missing)
    assert result.returncode == 2 and "nope.yaml: cannot read" in result.stderr


def test_check_config_validates_what_a_start_validates(tmp_path: Path) -> None:
    bad = tmp_path / "pool.yaml"
    bad.write_text("accounts:\n  - {bot_id: 1, plan: pro}\n  - {bot_id: 1, plan: pro}\n")
    env = _sandbox_env(tmp_path, MJGATE_POOL_FILE=str(bad), MJGATE_POOLFILE="x",
                       MJGATE_CLIENT_KEYS="short", MJGATE_PORT="99999")  # fmt: skip
    result = run_mjgate("check-config", env=env)
    assert result.returncode == 2
    assert "MJGATE_CLIENT_KEYS='short': each key must be at least 8 characters" in result.stderr
    assert "MJGATE_PORT='99999'" in result.stderr  # every bad setting, not only the first
    assert "unknown variable MJGATE_POOLFILE is ignored (did you mean MJGATE_POOL_FILE?)" in (
        result.stderr
    )
    env = _sandbox_env(tmp_path, MJGATE_POOL_FILE=str(bad))
    result = run_mjgate("check-config", env=env)
    assert result.returncode == 2 and f"pool file {bad}: line 3: bot_id 1 listed twice" in (
        result.stderr
    )
    assert result.stderr.count("line 3") == 1, result.stderr  # found from outside: said twice
    bad.write_text("accounts:\n  - {bot_id: 1, plan: pro}\n")
    result = run_mjgate("check-config", env=env | {"MJGATE_TYPO": "1"})
    assert result.returncode == 0, result.stderr
    assert "warning: unknown variable MJGATE_TYPO" in result.stderr
    assert "1 accounts" in result.stdout and "settings ok (sandbox)" in result.stdout


def test_serve_and_emulator_describe_themselves(tmp_path: Path) -> None:
    env = _sandbox_env(tmp_path)
    served = run_mjgate("serve", "--help", env=env)
    assert served.returncode == 0 and "Run the gateway" in served.stdout
    assert "MJGATE_DATA_DIR" in served.stdout and "sandbox" in served.stdout
    emulated = run_mjgate("emulator", "--help", env=env)
    assert emulated.returncode == 0 and "mjgate emulator: run the GoAPI emulator" in (
        emulated.stdout
    )
    assert "--accounts" in emulated.stdout
