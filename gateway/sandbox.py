"""Sandbox mode (no GOAPI_API_KEY): the emulator as upstream, a demo pool, a demo client key.

The emulator runs as a child process on MJGATE_SANDBOX_EMULATOR_PORT with the four demo
accounts (one per plan) that `gateway/sandbox_pool.yaml` declares to mjgate; GoAPI's webhooks
and account notifications flow from it back to mjgate on localhost.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx

from gateway.settings import Settings
from gateway.webhooks import goapi_secret, goapi_token

DEMO_CLIENT_KEY = "sandbox-demo-key"
SANDBOX_GOAPI_KEY = "sandbox-goapi-key"


def sandbox_settings(settings: Settings) -> Settings:
    """Settings for sandbox mode: emulator upstream, local webhooks, demo pool and key."""
    public = f"http://{_local(settings.host)}:{settings.port}"
    pool_file = settings.pool_file
    if pool_file is None:
        pool_file = Path(str(resources.files("gateway").joinpath("sandbox_pool.yaml")))
    keys = (
        settings.client_keys
        if DEMO_CLIENT_KEY in settings.client_keys
        else (*settings.client_keys, DEMO_CLIENT_KEY)
    )
    return dataclasses.replace(
        settings,
        goapi_base_url=f"http://127.0.0.1:{settings.sandbox_emulator_port}",
        public_url=settings.public_url or public,
        pool_file=pool_file,
        client_keys=keys,
        allow_private_webhooks=True,
    )


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def start_emulator(settings: Settings) -> subprocess.Popen[bytes]:
    """Start the emulator child process and wait until it answers."""
    assert settings.public_url is not None
    notify = (
        f"{settings.public_url}/webhooks/goapi/notifications/"
        f"{goapi_token(settings, 'notifications')}"
    )
    args = [
        sys.executable,
        "-m",
        "emulator",
        "--port",
        str(settings.sandbox_emulator_port),
        "--accounts",
        "demo",
        "--notifications-url",
        notify,
        "--notifications-secret",
        goapi_secret(settings),
    ]
    if settings.sandbox_speed == "instant":
        args.append("--instant")
    process = subprocess.Popen(args)
    deadline = time.monotonic() + 15
    url = f"{settings.goapi_base_url}/_emulator/accounts"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the sandbox emulator exited at start")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the sandbox emulator did not answer within 15 s")


def banner(settings: Settings) -> str:
    line = "=" * 72
    return "\n".join(
        [
            line,
            "  mjgate SANDBOX: no GOAPI_API_KEY set, so the upstream is the built-in emulator",
            "  (nothing reaches GoAPI; four demo accounts, one per plan).",
            f"  Gateway:        http://{_local(settings.host)}:{settings.port}",
            f"  Emulator:       {settings.goapi_base_url}",
            f"  Demo client key: {DEMO_CLIENT_KEY}",
            f"  Try: curl -s -X POST http://{_local(settings.host)}:{settings.port}/api/v1/task \\",
            f"         -H 'x-api-key: {DEMO_CLIENT_KEY}' -H 'content-type: application/json' \\",
            '         -d \'{"model":"midjourney","task_type":"imagine",'
            '"input":{"prompt":"a lighthouse --fast"}}\'',
            line,
        ]
    )
