"""The operator CLI against a live server: `mjgate serve` and the emulator on real sockets,
every command run as a subprocess, its output and exit code checked, `--json` parsed."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.keys.client import key_id
from tests.integration.procs import (
    ADMIN_TOKEN,
    BIN,
    CLIENT_KEY,
    Gateway,
    emulator,
    free_port,
    start_gateway,
    stop,
)

pytestmark = pytest.mark.slow

ACCOUNTS = [
    {"bot_id": 701, "plan": "pro", "name": "alpha"},
    {"bot_id": 702, "plan": "standard", "name": "beta"},
    {"bot_id": 703, "plan": "basic", "name": "gamma"},
]
POOL = """\
strategy: least_busy
accounts:
  - {bot_id: 701, name: alpha, plan: pro}
  - {bot_id: 702, name: beta, plan: standard}
  - {bot_id: 703, name: gamma, plan: basic}
"""


@pytest.fixture
def server(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Gateway]:
    with emulator(tmp_path, ACCOUNTS, pending=1.0, processing=1.0) as emu:
        pool_file = tmp_path / "pool.yaml"
        pool_file.write_text(POOL)
        gateway = start_gateway(redis_url, prefix, emu.url, pool_file, webhooks=False)
        try:
            yield gateway
        finally:
            stop(gateway.process)


def mjgate(server: Gateway, *args: str, token: str | None = ADMIN_TOKEN
           ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJGATE_")}
    env |= {"MJGATE_URL": server.url, "COLUMNS": "200"}
    if token is not None:
        env["MJGATE_ADMIN_TOKEN"] = token
    return subprocess.run([str(BIN / "mjgate"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    body = json.loads(ok(result))
    assert body["code"] in (200, 201) and body["message"] == "success"
    return body["data"]


def refused(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "mjgate" in result.stderr  # "mjgate: <why>", or argparse's usage line
    return result.stderr


def create_task(server: Gateway, prompt: str = "x --fast", key: str = CLIENT_KEY
                ) -> httpx.Response:  # fmt: skip
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": prompt}}
    return httpx.post(f"{server.url}/api/v1/task", json=body, headers={"x-api-key": key},
                      timeout=10)  # fmt: skip


def test_accounts_commands(server: Gateway) -> None:
    listed = ok(mjgate(server, "accounts", "list"))
    assert "3 accounts" in listed
    for text in ("701", "alpha", "pro", "beta", "gamma", "0/12", "0/3"):
        assert text in listed
    rows = as_json(mjgate(server, "accounts", "list", "--json"))["accounts"]
    assert [row["bot_id"] for row in rows] == [701, 702, 703]
    paused = as_json(mjgate(server, "accounts", "list", "--json", "--state", "paused"))
    assert paused["accounts"] == []

    added = ok(mjgate(server, "accounts", "add", "704", "--name", "delta", "--plan", "mega",
                      "--fast-hours", "5", "--tags", "studio,night"))  # fmt: skip
    assert "account 704 created" in added and "delta" in added and "studio, night" in added
    assert "account 704 unchanged" in ok(mjgate(
        server, "accounts", "add", "704", "--name", "delta", "--plan", "mega",
        "--fast-hours", "5", "--tags", "studio,night"))  # fmt: skip
    changed = ok(mjgate(server, "accounts", "set", "704", "--fast-hours", "2",
                        "--reason", "from /info"))  # fmt: skip
    assert "account 704 updated" in changed and "2.0 h (7200 s" in changed
    refused(mjgate(server, "accounts", "set", "704"), code=2)  # nothing to change

    cooling = ok(mjgate(server, "accounts", "state", "704", "cooling", "--for", "10m",
                        "--reason", "maintenance"))  # fmt: skip
    assert re.search(r"account 704 is cooling until \d{4}-\d\d-\d\dT", cooling)
    assert "account 704 is paused" in ok(mjgate(server, "accounts", "state", "704", "paused"))
    shown = ok(mjgate(server, "accounts", "show", "704"))
    for text in (
        "Account 704",
        "delta",
        "mega",
        "paused",
        "History",
        "operator: maintenance",
        "operator: from /info",
        "cooling -> paused",
        "active -> cooling",
    ):
        assert text in shown, text
    detail = as_json(mjgate(server, "accounts", "show", "704", "--json"))
    assert detail["state"] == "paused" and detail["fast_seconds_left"] == 7200
    assert [e["to"] for e in detail["history"] if e["what"] == "state"] == ["paused", "cooling"]

    assert "no account with bot_id 999" in refused(mjgate(server, "accounts", "show", "999"))
    assert "until" in refused(mjgate(server, "accounts", "state", "701", "cooling"))
    refused(mjgate(server, "accounts", "add", "705", "--plan", "gold"), code=2)
    refused(mjgate(server, "accounts", "state", "701", "cooling", "--for", "soon"), code=2)

    assert "account 704 removed" in ok(mjgate(server, "accounts", "remove", "704"))
    assert "account_not_found" in refused(mjgate(server, "accounts", "remove", "704"))


def test_remove_refused_with_tasks_in_flight_unless_forced(server: Gateway) -> None:
    ok(mjgate(server, "accounts", "state", "702", "paused"))
    ok(mjgate(server, "accounts", "state", "703", "paused"))
    created = create_task(server)
    assert created.status_code == 200 and created.headers["x-mjgate-bot-id"] == "701"
    busy = refused(mjgate(server, "accounts", "remove", "701"))
    assert "account 701 has 1 task(s) in flight" in busy and "HTTP 409" in busy
    assert "--force" in busy  # says how
    assert "account 701 removed" in ok(mjgate(server, "accounts", "remove", "701", "--force"))
    task_id = created.json()["data"]["task_id"]
    deadline = time.monotonic() + 15
    while as_json(mjgate(server, "tasks", "show", task_id, "--json"))["status"] != "completed":
        assert time.monotonic() < deadline, "the task in flight never settled"
        time.sleep(0.2)


NO_TENANCY = {"jobs_per_day": None, "jobs_per_month": None, "fast_seconds_per_day": None,
              "fast_seconds_per_month": None, "max_in_flight": None, "timezone": "UTC",
              "weight": 1, "allow_pinning": False, "expires_at": None}  # fmt: skip


def test_keys_commands(server: Gateway) -> None:
    created = ok(mjgate(server, "keys", "create", "team-a", "--modes", "relax", "--rate", "100",
                        "--staged-limit", "5"))  # fmt: skip
    secret = re.search(r"secret: (mjg_\S+)", created)
    kid = re.search(r"key ([0-9a-f]{16}) \(team-a\) created", created)
    assert secret and kid and "shown only now" in created
    secret_text, kid_text = secret.group(1), kid.group(1)

    task = create_task(server, "x --fast", key=secret_text)
    assert task.status_code == 200 and task.headers["x-mjgate-mode"] == "relax"

    listed = ok(mjgate(server, "keys", "list"))
    assert kid_text in listed and "team-a" in listed and "relax" in listed and "100" in listed
    assert secret_text not in listed
    keys = as_json(mjgate(server, "keys", "list", "--json"))["keys"]
    assert keys == [{"id": kid_text, "name": "team-a", "created_at": keys[0]["created_at"],
                     "allowed_modes": ["relax"], "tags": [], "staged_limit": 5,
                     "rate_per_minute": 100, "passthrough_models": [],
                     "passthrough_foreign_ids": False, **NO_TENANCY}]  # fmt: skip
    tenant = as_json(mjgate(server, "keys", "create", "team-t", "--json", "--jobs-per-day", "3",
                            "--fast-hours-per-month", "2.5", "--max-in-flight", "4",
                            "--timezone", "Europe/Paris", "--weight", "2", "--allow-pinning",
                            "--expires-at", "2099-01-01T00:00:00Z"))  # fmt: skip
    assert {k: tenant[k] for k in NO_TENANCY} == {
        **NO_TENANCY, "jobs_per_day": 3, "fast_seconds_per_month": 9000, "max_in_flight": 4,
        "timezone": "Europe/Paris", "weight": 2, "allow_pinning": True,
        "expires_at": "2099-01-01T00:00:00Z"}  # fmt: skip
    ok(mjgate(server, "keys", "revoke", tenant["id"]))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", keys[0]["created_at"])
    made = as_json(mjgate(server, "keys", "create", "team-b", "--json", "--passthrough-models",
                          "suno,*", "--passthrough-foreign-ids"))  # fmt: skip
    assert made["secret"].startswith("mjg_") and made["allowed_modes"] is None
    assert made["passthrough_models"] == ["suno", "*"] and made["passthrough_foreign_ids"]
    assert "suno,* +foreign ids" in ok(mjgate(server, "keys", "list"))

    assert f"key {kid_text} revoked" in ok(mjgate(server, "keys", "revoke", kid_text))
    assert create_task(server, key=secret_text).status_code == 401
    assert "HTTP 404" in refused(mjgate(server, "keys", "revoke", kid_text))
    assert "allowed_modes" in refused(mjgate(server, "keys", "create", "x", "--modes", "slow"))


def test_keys_set(server: Gateway) -> None:
    made = as_json(mjgate(server, "keys", "create", "team-q", "--json", "--jobs-per-day", "1",
                          "--modes", "relax", "--rate", "100"))  # fmt: skip
    kid, secret = made["id"], made["secret"]
    assert create_task(server, "x", key=secret).status_code == 200
    assert create_task(server, "x", key=secret).status_code == 429  # the day's one job is used

    shown = ok(mjgate(server, "keys", "set", kid, "--jobs-per-day", "2", "--weight", "3",
                      "--allow-pinning", "--name", "team-r"))  # fmt: skip
    assert f"key {kid} (team-r) updated" in shown
    for text in ("jobs per day", "2", "weight", "3", "allowed", "relax", "100"):
        assert text in shown
    assert secret not in shown
    assert create_task(server, "x", key=secret).status_code == 200  # the count was kept: 2 of 2
    assert create_task(server, "x", key=secret).status_code == 429

    cleared = as_json(mjgate(server, "keys", "set", kid, "--json", "--rate", "none",
                             "--modes", "all", "--tags", "a,b", "--no-allow-pinning",
                             "--jobs-per-day", "none",
                             "--expires-at", "2099-01-01T00:00:00Z"))  # fmt: skip
    view = {k: v for k, v in made.items() if k != "secret"}
    assert cleared == {**view, "name": "team-r", "weight": 3, "rate_per_minute": None,
                       "allowed_modes": None, "tags": ["a", "b"], "jobs_per_day": None,
                       "expires_at": "2099-01-01T00:00:00Z"}  # fmt: skip
    assert "HTTP 404" in refused(mjgate(server, "keys", "set", "0123456789abcdef", "--weight", "2"))
    assert "weight" in refused(mjgate(server, "keys", "set", kid, "--weight", "0"))
    assert "MJGATE_CLIENT_KEYS" in refused(
        mjgate(server, "keys", "set", key_id(CLIENT_KEY), "--weight", "2")
    )
    assert "nothing to change" in refused(mjgate(server, "keys", "set", kid), code=2)
    # what a key holds, at a glance (list) and whole (show)
    assert "expires 2099-01-01T00:00:00Z" in ok(mjgate(server, "keys", "list"))
    assert as_json(mjgate(server, "keys", "show", kid, "--json")) == cleared
    assert "weight" in ok(mjgate(server, "keys", "show", kid))
    assert "no managed key" in refused(mjgate(server, "keys", "show", "0123456789abcdef"))


def test_tasks_show(server: Gateway) -> None:
    created = create_task(server, "x --fast")
    task_id = created.json()["data"]["task_id"]
    shown = ok(mjgate(server, "tasks", "show", task_id))
    for text in (
        f"Task {task_id}",
        "imagine",
        "routed",
        created.headers["x-mjgate-bot-id"],
        "History",
        "sent",
    ):
        assert text in shown, text
    task = as_json(mjgate(server, "tasks", "show", task_id, "--json"))
    assert task["decision"] == "routed" and task["mode"] == "fast"
    assert "no task nope" in refused(mjgate(server, "tasks", "show", "nope"))


def test_pool_commands(server: Gateway, tmp_path: Path) -> None:
    ok(mjgate(server, "accounts", "state", "703", "paused"))  # its 3.3 h can't be spent
    status = ok(mjgate(server, "pool", "status"))
    for text in (
        "accounts",
        "least_busy",
        "fast slots",
        "0 in use of 15",
        "by plan",
        "basic 1, pro 1, standard 1",
        "fast time usable",
        "45.0 h (active accounts with setting fast)",
        "fast time, all accounts",
        "48.3 h (3.3 h on accounts that take no fast work",
    ):
        assert text in status, text
    totals = as_json(mjgate(server, "pool", "status", "--json"))
    assert totals["accounts"] == 3 and totals["by_state"] == {"active": 2, "paused": 1}
    assert (totals["fast_hours_usable"], totals["fast_hours_left"]) == (45.0, 48.3)

    exported = yaml.safe_load(ok(mjgate(server, "pool", "export")))
    assert [a["bot_id"] for a in exported["accounts"]] == [701, 702, 703]
    out = tmp_path / "exported.yaml"
    assert f"pool written to {out}" in ok(mjgate(server, "pool", "export", "-o", str(out)))
    assert yaml.safe_load(out.read_text()) == exported
    assert "applied: 3 unchanged" in ok(mjgate(server, "pool", "apply", str(out)))

    new = tmp_path / "new.yaml"
    new.write_text("strategy: weighted\naccounts:\n"
                   "  - {bot_id: 701, name: alpha, plan: pro}\n"
                   "  - {bot_id: 702, name: beta, plan: standard, weight: 4}\n"
                   "  - {bot_id: 704, name: delta, plan: mega}\n")  # fmt: skip
    dry = ok(mjgate(server, "pool", "apply", str(new), "--dry-run"))
    for line in (
        "~ pool updated: strategy",
        "~ account 702 updated: weight",
        "+ account 704 created",
        "- account 703 removed",
        "dry run, nothing applied: 1 created, 1 removed, 1 unchanged, 2 updated",
    ):
        assert line in dry, line
    assert "account 701" not in dry  # unchanged lines are left out
    assert len(as_json(mjgate(server, "accounts", "list", "--json"))["accounts"]) == 3

    applied = ok(mjgate(server, "pool", "apply", str(new)))
    assert "+ account 704 created" in applied and applied.rstrip().endswith(
        "applied: 1 created, 1 removed, 1 unchanged, 2 updated"
    )
    rows = as_json(mjgate(server, "accounts", "list", "--json"))["accounts"]
    assert [(r["bot_id"], r["weight"]) for r in rows] == [(701, 1), (702, 4), (704, 1)]
    again = as_json(mjgate(server, "pool", "apply", str(new), "--json"))
    assert again["counts"] == {"unchanged": 3}  # idempotent

    hooks = ok(mjgate(server, "pool", "notifications"))
    assert "/webhooks/goapi/notifications/" in hooks and "MJGATE_PUBLIC_URL is not set" in hooks
    assert as_json(mjgate(server, "pool", "notifications", "--json"))["url"] is None

    missing = refused(mjgate(server, "pool", "apply", str(tmp_path / "nope.yaml")), code=2)
    assert "cannot read" in missing
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  - bot_id: 1\n    plan: gold\n")
    assert "line 3" in refused(mjgate(server, "pool", "apply", str(bad)), code=2)


def test_pool_pacing_commands(server: Gateway) -> None:
    assert "the pool has no default pacing" in ok(mjgate(server, "pool", "pacing"))
    set_ = ok(mjgate(server, "pool", "pacing", "set", "--timezone", "Europe/Berlin",
                     "--min-gap", "30", "--fast-cap", "100"))  # fmt: skip
    for text in ("Default pacing", "Europe/Berlin", "fast 100, relax none", "30 s",
                 "3 accounts re-paced"):  # fmt: skip
        assert text in set_, text
    shown = as_json(mjgate(server, "pool", "pacing", "--json"))
    assert shown["pacing"]["min_gap_seconds"] == 30.0
    ok(mjgate(server, "accounts", "set", "702", "--tier", "backup"))
    ok(mjgate(server, "accounts", "set", "703", "--no-pacing"))
    for action, bot_id in (("add", "705"), ("set", "701")):  # null or keys, as in the API
        contradiction = refused(mjgate(server, "accounts", action, bot_id, "--no-pacing",
                                       "--timezone", "UTC", "--min-gap", "5"), code=2)  # fmt: skip
        assert "--no-pacing (unpaced) contradicts --timezone, --min-gap" in contradiction
    assert "account_not_found" in refused(mjgate(server, "accounts", "show", "705"))
    changed = as_json(mjgate(server, "pool", "pacing", "set", "--min-gap", "5", "--json"))
    assert changed["pacing"]["timezone"] == "Europe/Berlin"  # the other keys stay
    assert changed["accounts_updated"] == [701, 702]  # 703 opted out
    beta = as_json(mjgate(server, "accounts", "show", "702", "--json"))
    assert beta["pacing"]["tier"] == "backup" and beta["pacing"]["min_gap_seconds"] == 5.0
    assert "own: tier; from the pool's default" in ok(mjgate(server, "accounts", "show", "702"))
    exported = yaml.safe_load(ok(mjgate(server, "pool", "export")))
    assert exported["pacing"]["min_gap_seconds"] == 5.0

    refused(mjgate(server, "pool", "pacing", "set"), code=2)  # nothing to set
    bad = refused(mjgate(server, "pool", "pacing", "set", "--timezone", "Mars/Base"))
    assert "unknown time zone" in bad and "invalid_request" in bad
    cleared = ok(mjgate(server, "pool", "pacing", "clear"))
    assert "the pool has no default pacing" in cleared and "2 accounts re-paced" in cleared
    assert as_json(mjgate(server, "accounts", "show", "701", "--json"))["pacing"] is None


def test_exit_codes_for_tokens_and_reachability(server: Gateway) -> None:
    assert "no admin token" in refused(mjgate(server, "pool", "status", token=None), code=2)
    assert "invalid_api_key" in refused(mjgate(server, "pool", "status", token="wrong-token"))
    assert "forbidden" in refused(mjgate(server, "pool", "status", token=CLIENT_KEY))
    wrong = mjgate(server, "pool", "status", "--json", token="wrong-token")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["error"]["type"] == "invalid_api_key"
    # --token and --url win over the environment
    assert as_json(mjgate(server, "pool", "status", "--json", "--token", ADMIN_TOKEN,
                          token="wrong-token"))["accounts"] == 3  # fmt: skip
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = refused(mjgate(server, "pool", "status", "--url", nowhere), code=3)
    assert f"cannot reach mjgate at {nowhere}" in unreachable
    refused(mjgate(server, "accounts"), code=2)  # an action is required
    refused(mjgate(server, "accounts", "show", "abc"), code=2)


def test_admin_api_on_its_own_port(tmp_path: Path, redis_url: str, prefix: str) -> None:
    admin_port = free_port()
    with emulator(tmp_path, ACCOUNTS, pending=0.1, processing=0.1) as emu:
        pool_file = tmp_path / "pool.yaml"
        pool_file.write_text(POOL)
        gateway = start_gateway(redis_url, prefix, emu.url, pool_file, webhooks=False,
                                extra={"MJGATE_ADMIN_PORT": str(admin_port)})  # fmt: skip
        try:
            admin = dataclasses.replace(gateway, url=f"http://127.0.0.1:{admin_port}")
            assert as_json(mjgate(admin, "pool", "status", "--json"))["accounts"] == 3
            ok(mjgate(admin, "accounts", "state", "703", "paused"))
            # the client port serves the client API only
            assert "no route /admin/v1/pool" in refused(mjgate(gateway, "pool", "status"))
            assert create_task(gateway).status_code == 200
            assert httpx.get(f"{admin.url}/healthz", timeout=5).status_code == 404
        finally:
            stop(gateway.process)
        assert gateway.process.returncode in (0, -signal.SIGTERM)  # both servers stopped


F_SETPIPE_SZ = 1031  # Linux fcntl: a pipe's capacity


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    """`mjgate settings | head -1`: the CLI ends quietly when its reader closes the pipe (a
    pipe of one page, so that its 5 KB of output can't all fit before the reader leaves)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, F_SETPIPE_SZ, 4096)
    with subprocess.Popen(
        [str(BIN / "mjgate"), "settings"], stdout=write_end, stderr=subprocess.PIPE
    ) as process:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:
            reader.readline()  # then closed, as `head -1` does
        _, errors = process.communicate(timeout=30)
    assert process.returncode in (0, 1)
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors, errors.decode()


def test_an_id_names_one_path_segment(server: Gateway) -> None:
    """An id with dot segments reaches no other admin route (the HTTP client would resolve
    `../accounts/1009` into DELETE /admin/v1/accounts/1009): it is encoded, and unknown."""
    ok(mjgate(server, "accounts", "add", "1009", "--plan", "pro"))
    assert "HTTP 404" in refused(mjgate(server, "keys", "revoke", "../accounts/1009"))
    assert "HTTP 404" in refused(mjgate(server, "keys", "set", "../accounts/1009", "--weight", "2"))
    assert "HTTP 404" in refused(mjgate(server, "tasks", "show", "../pool/export"))
    assert "1009" in ok(mjgate(server, "accounts", "show", "1009"))  # still there
    assert "HTTP 404" in refused(mjgate(server, "keys", "show", "nope"))
