"""The audit log of operator changes: every admin write leaves exactly one `admin_change` line
naming the action, the target, the fields changed (from, to), the outcome and the caller, and
never a secret; refusals are `admin_refused`, at debug (a bad request) or warning (no admin
token)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from gateway.cli.admin_api import operator
from gateway.logs import LOGGER, JsonFormatter
from routing.errors import StoreError
from routing.storeops import StoreOp
from tests.harness import ADMIN_TOKEN, CLIENT_KEY, Harness, harness

OPERATOR = {"authorization": f"Bearer {ADMIN_TOKEN}", "x-mjgate-operator": "alice"}
AUDIT = ("admin_change", "admin_refused", "admin_failed")
POOL_FILE = """\
strategy: weighted
pacing: {timezone: UTC, min_gap_seconds: 5}
accounts:
  - {bot_id: 1002, name: standard, plan: standard, weight: 3}
  - {bot_id: 3001, name: new-pro, plan: pro, fast_hours_left: 12.5}
"""


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(JsonFormatter().format(record))

    def audit(self) -> list[dict[str, Any]]:
        """The audit lines since the last call."""
        lines = [orjson.loads(line) for line in self.raw]
        self.raw.clear()
        return [line for line in lines if line["event"] in AUDIT]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    LOGGER.addHandler(handler)
    yield handler
    LOGGER.removeHandler(handler)


async def write(h: Harness, lines: Lines, method: str, path: str, body: Any = None,
                *, status: int = 200, content: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    """Make one admin write as alice; its one audit line."""
    answer = await h.client.request(
        method, f"/admin/v1{path}", json=body, content=content, headers=OPERATOR
    )
    assert answer.status_code == status, answer.text
    found = lines.audit()
    assert len(found) == 1, found
    line = found[0]
    assert line["operator"] == "alice" and line["client"] == "127.0.0.1"
    assert line["status"] == status and line["request_id"]
    return line


async def test_every_account_write_is_one_line_with_what_changed(
    redis: Redis, prefix: str, lines: Lines
) -> None:
    async with harness(redis, prefix) as h:
        lines.audit()
        body = {"name": "studio", "plan": "pro", "weight": 2}
        line = await write(h, lines, "PUT", "/accounts/2001", body, status=201)
        assert line["event"] == "admin_change" and line["action"] == "account_put"
        assert line["bot_id"] == 2001 and line["outcome"] == "created"
        assert line["fields"]["plan"] == {"from": None, "to": "pro"}
        assert line["fields"]["weight"] == {"from": None, "to": 2}

        line = await write(h, lines, "PUT", "/accounts/2001", body | {"weight": 4})
        assert line["outcome"] == "updated"
        assert line["fields"] == {"weight": {"from": 2, "to": 4}}

        change = {"fast_hours_left": 2, "state": "paused", "tags": ["a"], "reason": "from /info"}
        line = await write(h, lines, "PATCH", "/accounts/2001", change)
        assert line["action"] == "account_patch" and line["outcome"] == "updated"
        assert line["reason"] == "from /info"
        assert line["fields"]["fast_seconds_left"]["to"] == 7200
        assert line["fields"]["state"] == {"from": "active", "to": "paused"}
        assert line["fields"]["tags"] == {"from": [], "to": ["a"]}

        state = {"state": "cooling", "until": 4102444800, "reason": "rest"}
        line = await write(h, lines, "POST", "/accounts/2001/state", state)
        assert line["action"] == "account_state" and line["bot_id"] == 2001
        assert line["fields"]["state"] == {"from": "paused", "to": "cooling"}
        assert line["fields"]["state_until"]["to"] == 4102444800

        line = await write(h, lines, "DELETE", "/accounts/2001")
        assert line["action"] == "account_remove" and line["outcome"] == "removed"
        assert line["force"] is False and line["fields"]["plan"] == {"from": "pro", "to": None}


async def test_key_writes_are_logged_and_never_their_secret(
    redis: Redis, prefix: str, lines: Lines
) -> None:
    async with harness(redis, prefix) as h:
        lines.audit()
        answer = await h.client.post(
            "/admin/v1/keys", json={"name": "team-a", "jobs_per_day": 10}, headers=OPERATOR
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()["data"]
        secret, kid = created["secret"], created["id"]
        everything = "\n".join(lines.raw)
        (line,) = lines.audit()
        assert line["action"] == "key_create" and line["key_id"] == kid
        assert line["outcome"] == "created"
        assert line["fields"]["name"] == {"from": None, "to": "team-a"}
        assert line["fields"]["jobs_per_day"] == {"from": None, "to": 10}

        line = await write(h, lines, "PATCH", f"/keys/{kid}", {"jobs_per_day": 20})
        assert line["action"] == "key_patch" and line["key_id"] == kid
        assert line["fields"] == {"jobs_per_day": {"from": 10, "to": 20}}
        everything += "\n".join(lines.raw)

        line = await write(h, lines, "DELETE", f"/keys/{kid}")
        assert line["action"] == "key_revoke" and line["outcome"] == "revoked"
        assert line["key_name"] == "team-a"
        everything += "\n".join(lines.raw)
        assert secret not in everything and ADMIN_TOKEN not in everything


async def test_pool_apply_and_the_default_pacing_are_logged(
    redis: Redis, prefix: str, lines: Lines
) -> None:
    async with harness(redis, prefix) as h:
        lines.audit()
        dry = await h.client.post("/admin/v1/pool/apply?dry_run=true",
                                  content=POOL_FILE.encode(), headers=OPERATOR)  # fmt: skip
        assert dry.status_code == 200 and lines.audit() == []  # a dry run writes nothing

        async def failing(*args: object, **kwargs: object) -> None:
            raise StoreError(StoreOp.APPLY_ACCOUNT, "Redis went away")

        with pytest.MonkeyPatch.context() as patched:  # a 5xx is on the record, said dry
            patched.setattr(h.gate.catalog, "apply_pool", failing)
            line = await write(h, lines, "POST", "/pool/apply?dry_run=true",
                               content=POOL_FILE.encode(), status=503)  # fmt: skip
        assert line["event"] == "admin_failed" and line["dry_run"] is True

        line = await write(h, lines, "POST", "/pool/apply", content=POOL_FILE.encode())
        assert line["action"] == "pool_apply" and line["outcome"] == "applied"
        assert len(line["file_sha256"]) == 64 and line["changes_left_off"] == 0
        changes = {c["bot_id"]: c for c in line["changes"] if c["bot_id"] is not None}
        pool = {
            k: v for c in line["changes"] if c["bot_id"] is None for k, v in c["fields"].items()
        }
        assert pool["strategy"] == {"from": "least_busy", "to": "weighted"}
        assert pool["pacing"]["from"] is None and pool["pacing"]["to"]["min_gap_seconds"] == 5
        assert changes[1002]["fields"]["weight"] == {"from": 1, "to": 3}
        assert changes[3001]["action"] == "created" and changes[1001]["action"] == "removed"

        line = await write(h, lines, "PATCH", "/pool/pacing", {"min_gap_seconds": 9})
        assert line["action"] == "pacing_default_patch" and line["outcome"] == "updated"
        pacing = line["fields"]["pacing"]
        assert pacing["from"]["min_gap_seconds"] == 5 and pacing["to"]["min_gap_seconds"] == 9
        assert line["accounts_updated"] == 2

        line = await write(h, lines, "PUT", "/pool/pacing", {"timezone": "UTC"})
        assert line["action"] == "pacing_default_put"
        line = await write(h, lines, "DELETE", "/pool/pacing")
        assert line["action"] == "pacing_default_remove"
        assert line["fields"]["pacing"]["to"] is None
        line = await write(h, lines, "DELETE", "/pool/pacing")
        assert line["outcome"] == "unchanged" and line["fields"] == {}


async def test_refused_writes_and_missing_tokens(
    redis: Redis, prefix: str, lines: Lines, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(redis, prefix) as h:
        lines.audit()
        bad = await h.client.put("/admin/v1/accounts/2001", json={"plan": "huge"},
                                 headers=OPERATOR)  # fmt: skip
        assert bad.status_code == 400
        (line,) = lines.audit()
        assert line["event"] == "admin_refused" and line["level"] == "debug"
        assert line["action"] == "account_put" and line["bot_id"] == 2001
        assert line["status"] == 400 and line["error"] == "invalid_request"

        gone = await h.client.delete("/admin/v1/keys/0123456789abcdef", headers=OPERATOR)
        assert gone.status_code == 404
        (line,) = lines.audit()
        assert line["event"] == "admin_refused" and line["error"] == "not_found"
        assert line["key_id"] == "0123456789abcdef"
        pasted = await h.client.delete("/admin/v1/keys/mjg_a-secret-pasted-as-an-id",
                                       headers=OPERATOR)  # fmt: skip
        assert pasted.status_code == 404
        (line,) = lines.audit()
        assert line["key_id"] == "[redacted]" and "a-secret" not in str(line)

        for headers in ({"authorization": f"Bearer {ADMIN_TOKEN}x"}, {"x-api-key": CLIENT_KEY}):
            refused = await h.client.delete("/admin/v1/accounts/1001", headers=headers)
            assert refused.status_code in (401, 403)
            (line,) = lines.audit()
            assert line["event"] == "admin_refused" and line["level"] == "warning"
            assert line["action"] == "authenticate" and line["method"] == "DELETE"
            assert line["route"] == "/admin/v1/accounts/{bot_id}" and line["client"] == "127.0.0.1"
            assert ADMIN_TOKEN not in str(line) and CLIENT_KEY not in str(line)
        reads = await h.client.get("/admin/v1/accounts", headers=OPERATOR)
        assert reads.status_code == 200 and lines.audit() == []  # reads are not audited


async def test_the_operator_name_is_cleaned(redis: Redis, prefix: str, lines: Lines) -> None:
    async with harness(redis, prefix) as h:
        lines.audit()
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}", "x-mjgate-operator": "b\tob" * 40}
        answer = await h.client.patch("/admin/v1/accounts/1003", json={"weight": 2},
                                      headers=headers)  # fmt: skip
        assert answer.status_code == 200
        (line,) = lines.audit()
        assert line["operator"] == ("bob" * 40)[:64]
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        plain = await h.client.patch("/admin/v1/accounts/1003", json={"weight": 3}, headers=admin)
        assert plain.status_code == 200
        (line,) = lines.audit()
        assert line["operator"] is None and line["fields"] == {"weight": {"from": 2, "to": 3}}


def test_the_cli_names_its_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MJGATE_OPERATOR", "  carol  ")
    assert operator() == "carol"
    monkeypatch.setenv("MJGATE_OPERATOR", "zoë")  # a header must be ASCII: none sent
    assert operator() == ""
    monkeypatch.delenv("MJGATE_OPERATOR")
    monkeypatch.setenv("LOGNAME", "dave")  # getpass reads it first
    assert operator() == "dave"
