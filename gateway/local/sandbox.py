"""Sandbox mode (no GOAPI_API_KEY): the emulator as upstream, a demo pool, a demo client key,
and a sandbox-only admin token.

The emulator runs as a child process on MJGATE_SANDBOX_EMULATOR_PORT with the four demo
accounts (one per plan) that `gateway/local/sandbox_pool.yaml` declares to mjgate; GoAPI's webhooks
and account notifications flow from it back to mjgate on localhost. Everything both sides
derive from the GoAPI key (the webhook secret, the notification path's token) is derived from
the sandbox's key, `SANDBOX_GOAPI_KEY`, so what the emulator sends is what mjgate expects.

The emulator dies with `mjgate serve` (gateway.local.children); a start that finds the emulator of a
crashed run (its pid file, in MJGATE_DATA_DIR) stops it, and a start that finds the port taken
by anything else stops with that message instead of using it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx

from gateway import logs
from gateway.local import children
from gateway.settings import Settings
from gateway.webhooks.credentials import goapi_secret, goapi_token

DEMO_CLIENT_KEY = "sandbox-demo-key"
SANDBOX_GOAPI_KEY = "sandbox-goapi-key"
SANDBOX_ADMIN_TOKEN = "sandbox-admin-token"  # sandbox only: nothing there reaches GoAPI


class SandboxError(RuntimeError):
    """The sandbox emulator could not be started."""


def sandbox_settings(settings: Settings) -> Settings:
    """Settings for sandbox mode: emulator upstream and its key, local webhooks, demo pool,
    demo client key, and the sandbox admin token unless MJGATE_ADMIN_TOKEN is set."""
    public = f"http://{local(settings.host)}:{settings.port}"
    pool_file = settings.pool_file
    if pool_file is None:
        pool_file = Path(str(resources.files("gateway.local").joinpath("sandbox_pool.yaml")))
    keys = (
        settings.client_keys
        if DEMO_CLIENT_KEY in settings.client_keys
        else (*settings.client_keys, DEMO_CLIENT_KEY)
    )
    return dataclasses.replace(
        settings,
        goapi_api_key=SANDBOX_GOAPI_KEY,
        goapi_base_url=f"http://127.0.0.1:{settings.sandbox_emulator_port}",
        public_url=settings.public_url or public,
        pool_file=pool_file,
        client_keys=keys,
        admin_token=settings.admin_token or SANDBOX_ADMIN_TOKEN,
        allow_private_webhooks=True,
    )


def local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _pid_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "sandbox-emulator.pid"


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def emulator_command(settings: Settings) -> list[str]:
    """The emulator's command line: nothing secret on it (`ps` shows it to every user)."""
    args = [
        sys.executable, "-m", "emulator",
        "--port", str(settings.sandbox_emulator_port),
        "--accounts", "demo",
    ]  # fmt: skip
    if settings.sandbox_speed == "instant":
        args.append("--instant")
    return args


def emulator_environment(settings: Settings) -> dict[str, str]:
    """The emulator's environment: where its account notifications go (the URL carries the
    path token) and their secret, which the command line must not show."""
    assert settings.public_url is not None
    notify = (
        f"{settings.public_url}/webhooks/goapi/notifications/"
        f"{goapi_token(settings, 'notifications')}"
    )
    return {
        **os.environ,
        "EMULATOR_NOTIFICATIONS_URL": notify,
        "EMULATOR_NOTIFICATIONS_SECRET": goapi_secret(settings),
    }


def start_emulator(settings: Settings) -> subprocess.Popen[bytes]:
    """Start the emulator child process (of `sandbox_settings(...)`) and wait until it
    answers; SandboxError if it can't."""
    port = settings.sandbox_emulator_port
    pid_file = _pid_file(settings)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    stale = children.stop_stale(pid_file, "emulator")
    if stale is not None:
        logs.event("sandbox_emulator_stale_stopped", pid=stale, port=port)
    if _port_taken(port):
        raise SandboxError(
            f"port {port} (MJGATE_SANDBOX_EMULATOR_PORT) is already in use by another "
            "process; stop it or choose another port"
        )
    process = subprocess.Popen(
        emulator_command(settings),
        env=emulator_environment(settings),
        preexec_fn=children.die_with_parent(),
    )
    children.write_pid(pid_file, process.pid)
    deadline = time.monotonic() + 15
    url = f"{settings.goapi_base_url}/_emulator/accounts"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            children.clear_pid(pid_file, process.pid)
            raise SandboxError(f"the sandbox emulator exited at start ({process.returncode})")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_emulator(settings, process)
    raise SandboxError("the sandbox emulator did not answer within 15 s")


def stop_emulator(settings: Settings, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    children.clear_pid(_pid_file(settings), process.pid)


def banner(settings: Settings) -> str:
    line = "=" * 76
    gateway = f"http://{local(settings.host)}:{settings.port}"
    admin = (
        f"http://{local(settings.host)}:{settings.admin_port}"
        if settings.admin_port is not None
        else gateway
    )
    token = (
        f"{SANDBOX_ADMIN_TOKEN} (the sandbox's own; MJGATE_ADMIN_TOKEN overrides it)"
        if settings.admin_token == SANDBOX_ADMIN_TOKEN
        else "the MJGATE_ADMIN_TOKEN you set"
    )
    cli_env = f"MJGATE_ADMIN_TOKEN={settings.admin_token}" if (
        settings.admin_token == SANDBOX_ADMIN_TOKEN) else "MJGATE_ADMIN_TOKEN=..."  # fmt: skip
    url_env = "" if admin == "http://127.0.0.1:8080" else f" MJGATE_URL={admin}"
    return "\n".join(
        [
            line,
            "  mjgate SANDBOX: no GOAPI_API_KEY set, so the upstream is the built-in emulator",
            "  (nothing reaches GoAPI; four demo accounts, one per plan).",
            f"  Gateway:          {gateway}",
            f"  Emulator:         {settings.goapi_base_url}  (control API: /_emulator)",
            f"  Demo client key:  {DEMO_CLIENT_KEY}",
            f"  Admin API:        {admin}/admin/v1, token {token}",
            f"  Operator CLI:     {cli_env}{url_env} mjgate accounts list",
            f"  Try: curl -s -X POST {gateway}/api/v1/task \\",
            f"         -H 'x-api-key: {DEMO_CLIENT_KEY}' -H 'content-type: application/json' \\",
            '         -d \'{"model":"midjourney","task_type":"imagine",'
            '"input":{"prompt":"a lighthouse --fast"}}\'',
            line,
        ]
    )
