"""MJGATE_POOL_FILE at start: `seed` (the default) keeps what the admin API changed,
`authoritative` makes the pool match the file; every change a start makes is logged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration import serve
from tests.integration.procs import ADMIN_TOKEN, BIN, emulator

pytestmark = pytest.mark.slow

ACCOUNTS = [{"bot_id": 901, "plan": "pro"}, {"bot_id": 902, "plan": "standard"}]
POOL = "accounts:\n  - {bot_id: 901, name: first, plan: pro}\n"


def _env(tmp_path: Path, redis_url: str, prefix: str, upstream: str, **extra: str
         ) -> dict[str, str]:  # fmt: skip
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    return serve.base_env(
        tmp_path / "data", serve.ports()[0], REDIS_URL=redis_url, MJGATE_REDIS_PREFIX=prefix,
        GOAPI_API_KEY="integration", GOAPI_BASE_URL=upstream, MJGATE_POOL_FILE=str(pool),
        **extra)  # fmt: skip


def _bot_ids(served: serve.Served) -> list[int]:
    rows = served.admin("GET", "/accounts").json()["data"]["accounts"]
    return [row["bot_id"] for row in rows]


def _change_through_the_api(served: serve.Served) -> list[str | None]:
    """Add 902, change 901's weight; returns the answers' x-mjgate-warning headers."""
    added = served.admin("PUT", "/accounts/902", json={"name": "added", "plan": "standard"})
    assert added.status_code == 201, added.text
    changed = served.admin("PATCH", "/accounts/901", json={"weight": 7})
    assert changed.status_code == 200, changed.text
    return [added.headers.get("x-mjgate-warning"), changed.headers.get("x-mjgate-warning")]


def _cli(served: serve.Served, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJGATE_")}
    env |= {"MJGATE_URL": served.url, "MJGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    return subprocess.run([str(BIN / "mjgate"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_seed_mode_keeps_accounts_the_api_added(tmp_path: Path, redis_url: str, prefix: str
                                                ) -> None:  # fmt: skip
    with emulator(tmp_path, ACCOUNTS, pending=1, processing=1) as emu:
        env = _env(tmp_path, redis_url, prefix, emu.url)
        with serve.serving(env, tmp_path / "first.log") as first:
            assert _bot_ids(first) == [901]
            assert _change_through_the_api(first) == [None, None]
        with serve.serving(env, tmp_path / "second.log") as second:
            assert _bot_ids(second) == [901, 902]
            weight = second.admin("GET", "/accounts/901").json()["data"]["weight"]
            assert weight == 7
        applied = [e for e in second.events() if e["event"] == "pool_applied"]
        assert applied[-1]["mode"] == "seed" and applied[-1]["counts"] == {"unchanged": 1}
        assert not [e for e in second.events() if e["event"] == "pool_change"]


def test_authoritative_mode_undoes_api_changes_and_logs_each(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    with emulator(tmp_path, ACCOUNTS, pending=1, processing=1) as emu:
        env = _env(tmp_path, redis_url, prefix, emu.url, MJGATE_POOL_FILE_MODE="authoritative")
        with serve.serving(env, tmp_path / "first.log") as first:
            warnings = _change_through_the_api(first)
            assert _bot_ids(first) == [901, 902]
            assert first.admin("GET", "/accounts").headers.get("x-mjgate-warning") is None
            # the CLI, where operators change accounts, says it too (and lists say nothing)
            added = _cli(first, "accounts", "add", "903", "--plan", "pro")
            assert added.returncode == 0, added.stderr
            assert "mjgate: warning: MJGATE_POOL_FILE_MODE=authoritative" in added.stderr
            listed = _cli(first, "accounts", "list")
            assert listed.returncode == 0 and "warning" not in listed.stderr
        with serve.serving(env, tmp_path / "second.log") as second:
            assert _bot_ids(second) == [901]
        for warning in warnings:
            assert warning is not None and "the next start applies the pool file pool.yaml" in (
                warning
            )
        changes = {e["bot_id"]: e for e in second.events() if e["event"] == "pool_change"}
        assert changes[902]["action"] == "removed"
        assert changes[902]["fields"]["name"] == {"from": "added", "to": None}
        assert changes[901]["action"] == "updated"
        assert changes[901]["fields"] == {"weight": {"from": 7, "to": 1}}
