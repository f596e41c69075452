"""Real processes on real sockets: the emulator and mjgate replicas, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.local import topologies
from gateway.settings import Settings
from gateway.webhooks.credentials import goapi_token

WEBHOOK_SECRET = "integration-webhook-secret"
CLIENT_KEY = "integration-client-key"
ADMIN_TOKEN = "integration-admin-token"
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free port, never one handed out before in this test session (two taken before
    either is bound, a gateway's and its sandbox emulator's, once came out the same)."""
    return topologies.free_port()


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]

    def received(self) -> list[dict[str, object]]:
        body = httpx.get(f"{self.url}/_emulator/received", timeout=10).json()
        result: list[dict[str, object]] = body["received"]
        return result

    def accounts(self) -> dict[int, dict[str, object]]:
        body = httpx.get(f"{self.url}/_emulator/accounts", timeout=10).json()
        rows = body["accounts"] if isinstance(body, dict) else body
        return {int(row["bot_id"]): row for row in rows}


@contextmanager
def emulator(
    tmp: Path,
    accounts: Sequence[dict[str, object]],
    *,
    pending: float,
    processing: float,
    notify_port: int | None = None,
) -> Iterator[Emulator]:
    port = free_port()
    accounts_file = tmp / f"emulator-accounts-{port}.json"
    accounts_file.write_text(json.dumps(list(accounts)))
    args = [
        sys.executable,
        "-m",
        "emulator",
        "--port",
        str(port),
        "--accounts",
        str(accounts_file),
        "--pending-seconds",
        str(pending),
        "--processing-seconds",
        str(processing),
    ]
    if notify_port is not None:
        token = goapi_token(Settings(webhook_secret=WEBHOOK_SECRET), "notifications")
        args += [
            "--notifications-url",
            f"http://127.0.0.1:{notify_port}/webhooks/goapi/notifications/{token}",
        ]
    process = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_emulator/accounts", process)
        yield Emulator(url, process)
    finally:
        stop(process)


@dataclass
class Gateway:
    url: str
    port: int
    process: subprocess.Popen[bytes]


def start_gateway(
    redis_url: str,
    prefix: str,
    upstream: str,
    pool_file: Path,
    *,
    port: int | None = None,
    webhooks: bool = True,
    extra: dict[str, str] | None = None,
) -> Gateway:
    port = port or free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MJGATE_", "GOAPI_"))},
        "REDIS_URL": redis_url,
        "MJGATE_REDIS_PREFIX": prefix,
        "GOAPI_API_KEY": "integration",
        "GOAPI_BASE_URL": upstream,
        "MJGATE_PORT": str(port),
        "MJGATE_CLIENT_KEYS": CLIENT_KEY,
        "MJGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MJGATE_POOL_FILE": str(pool_file),
        "MJGATE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MJGATE_LOG_LEVEL": "warning",
        "MJGATE_RECONCILE_INTERVAL": "0.2",
        **({"MJGATE_PUBLIC_URL": f"http://127.0.0.1:{port}"} if webhooks else {}),
        **(extra or {}),
    }
    process = subprocess.Popen([str(BIN / "mjgate"), "serve"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", process)
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
    except BaseException:
        stop(process)
        raise
    return Gateway(url, port, process)
