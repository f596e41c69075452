"""`mjgate check-config` connects to the Redis it is given and says which topology it found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "mjgate"


def check_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MJGATE_", "GOAPI_"))}
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [str(BIN), "check-config"], env={**clean, **env}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_it_reports_the_topology_it_found(redis_url: str) -> None:
    done = check_config(REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    assert "redis: standalone Redis" in done.stdout and "role master" in done.stdout


def test_an_unreachable_redis_is_exit_1_and_says_so() -> None:
    done = check_config(REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode == 1
    assert "cannot reach Redis" in done.stderr


def test_the_embedded_default_is_named_without_connecting() -> None:
    done = check_config()
    assert done.returncode == 0, done.stderr
    assert "redis: embedded" in done.stdout
