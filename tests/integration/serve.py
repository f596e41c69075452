"""`mjgate serve` as a subprocess in its own process group, its log kept in a file, for tests
of what a start, a stop and a crash do (embedded Redis, sandbox, children)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.integration.procs import ADMIN_TOKEN, BIN, CLIENT_KEY, free_port

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def children(self) -> list[int]:
        """Pids of the direct children (the embedded Redis, the sandbox emulator)."""
        pid = self.process.pid
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(item) for item in raw.split()]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}/admin/v1{path}", headers=ADMIN, timeout=10,
                             **kwargs)  # fmt: skip


def base_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MJGATE_", "GOAPI_"))}
    env.pop("REDIS_URL", None)
    return env | {
        "MJGATE_PORT": str(port),
        "MJGATE_DATA_DIR": str(data_dir),
        "MJGATE_CLIENT_KEYS": CLIENT_KEY,
        "MJGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MJGATE_RECONCILE_INTERVAL": "0.2",
        **extra,
    }


def start(env: dict[str, str], log: Path, *, ready: bool = True, timeout: float = 30,
          path: str = "/readyz") -> Served:  # fmt: skip
    """Start `mjgate serve` in a new process group; wait for `path` to answer 200 unless
    `ready` is False (then only until it answers at all, or exits)."""
    port = int(env["MJGATE_PORT"])
    with log.open("ab") as out:
        process = subprocess.Popen([str(BIN / "mjgate"), "serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return served
        try:
            status = httpx.get(f"{served.url}{path}", timeout=1).status_code
            if status == 200 or not ready:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop(served)
    raise RuntimeError(f"mjgate serve did not get ready within {timeout} s:\n{served.text()}")


def stop(served: Served, sig: int = signal.SIGTERM) -> None:
    if served.process.poll() is None:
        served.process.send_signal(sig)
        try:
            served.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait()


def kill_group(served: Served) -> None:
    """SIGKILL the whole process group: mjgate serve and every child, at once."""
    os.killpg(served.process.pid, signal.SIGKILL)
    served.process.wait()


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True
        if not raw:
            return True  # a zombie
        time.sleep(0.05)
    return False


@contextmanager
def serving(env: dict[str, str], log: Path, path: str = "/readyz") -> Iterator[Served]:
    served = start(env, log, path=path)
    try:
        yield served
    finally:
        stop(served)


def ports() -> tuple[int, int]:
    return free_port(), free_port()
