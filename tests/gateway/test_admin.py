"""The admin API (/admin/v1), in process against the emulator and a real Redis."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.admin.routes import admin_only_app
from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.accounts import AccountSpec
from routing.model import AccountState, Plan, SlotKind
from routing.poolfile import parse_pool_file
from tests.harness import ADMIN_TOKEN, CLIENT_KEY, Harness, harness

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


async def call(h: Harness, method: str, path: str, *, body: Any = None,
               content: bytes | None = None, headers: dict[str, str] | None = None
               ) -> httpx.Response:  # fmt: skip
    return await h.client.request(
        method, f"/admin/v1{path}", json=body, content=content,
        headers=ADMIN if headers is None else headers)  # fmt: skip


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["message"] == "success"
    return body["data"]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and body["data"] is None and body["message"]
    details: dict[str, Any] = body["error"]
    return details


POOL_FILE = """\
strategy: weighted
accounts:
  - bot_id: 1002
    name: standard
    plan: standard
    weight: 3
  - bot_id: 3001
    name: new-pro
    plan: pro
    fast_hours_left: 12.5
    tags: [studio]
"""

# (method, path, body, status with the admin token)
ENDPOINTS: list[tuple[str, str, Any, int]] = [
    ("GET", "/accounts", None, 200),
    ("GET", "/accounts/1002", None, 200),
    ("PUT", "/accounts/1002", {"name": "standard", "plan": "standard"}, 200),
    ("PATCH", "/accounts/1002", {"weight": 2}, 200),
    ("DELETE", "/accounts/1002", None, 200),
    ("POST", "/accounts/1002/state", {"state": "paused", "reason": "test"}, 200),
    ("GET", "/keys", None, 200),
    ("POST", "/keys", {"name": "k"}, 201),
    ("DELETE", "/keys/0123456789abcdef", None, 404),
    ("GET", "/tasks/7b0c6a30-0000-4000-8000-000000000000", None, 404),
    ("GET", "/pool", None, 200),
    ("POST", "/pool/apply?dry_run=true", POOL_FILE, 200),
    ("GET", "/pool/export", None, 200),
    ("GET", "/notifications", None, 200),
]


def _request(method: str, path: str, body: Any) -> dict[str, Any]:
    if isinstance(body, str):
        return {"content": body.encode()}
    return {"body": body}


@pytest.mark.parametrize(("method", "path", "body", "ok"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])  # fmt: skip
async def test_auth_matrix(redis: Redis, prefix: str, method: str, path: str, body: Any,
                           ok: int) -> None:  # fmt: skip
    async with harness(redis, prefix) as h:
        kw = _request(method, path, body)
        missing = await call(h, method, path, headers={}, **kw)
        assert error(missing, 401)["type"] == "missing_api_key"
        for headers in ({"x-api-key": CLIENT_KEY}, {"authorization": f"Bearer {CLIENT_KEY}"}):
            forbidden = await call(h, method, path, headers=headers, **kw)
            assert error(forbidden, 403)["type"] == "forbidden"
        for wrong in (ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], "Basic " + ADMIN_TOKEN):
            header = wrong if wrong.startswith("Basic") else f"Bearer {wrong}"
            refused = await call(h, method, path, headers={"authorization": header}, **kw)
            assert refused.status_code == 401, refused.text
        # the admin token in x-api-key is not how the admin API is called
        sideways = await call(h, method, path, headers={"x-api-key": ADMIN_TOKEN}, **kw)
        assert sideways.status_code == 401
        assert "Authorization: Bearer" in sideways.json()["message"]  # says where it goes
        allowed = await call(h, method, path, **kw)
        assert allowed.status_code == ok, allowed.text
        assert allowed.json()["code"] == ok


async def test_admin_api_is_off_without_a_token(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        h.gate.settings = dataclasses.replace(h.gate.settings, admin_token="")
        for headers in (ADMIN, {"authorization": "Bearer "}, {}):
            answer = await call(h, "GET", "/accounts", headers=headers)
            assert error(answer, 404)["type"] == "not_found"


async def test_list_and_show_accounts(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        await h.gate.catalog.apply_account(AccountSpec(2001, name="tagged", tags=("studio",)))
        listed = data(await call(h, "GET", "/accounts"))["accounts"]
        assert [a["bot_id"] for a in listed] == [1001, 1002, 1003, 1004, 2001]
        pro = listed[2]
        assert pro["plan"] == "pro" and pro["state"] == "active" and pro["setting"] == "fast"
        assert pro["slots"] == {"fast": 12, "relax": 3}
        assert pro["in_flight"] == {"fast": 0, "relax": 0}
        assert pro["fast_hours_left"] == 30 and pro["fast_seconds_left"] == 30 * 3600
        assert "history" not in pro
        tagged = data(await call(h, "GET", "/accounts?tag=studio"))["accounts"]
        assert [a["bot_id"] for a in tagged] == [2001]
        await h.gate.store.set_state(1001, AccountState.PAUSED)
        paused = data(await call(h, "GET", "/accounts?state=paused"))["accounts"]
        assert [a["bot_id"] for a in paused] == [1001]

        shown = data(await call(h, "GET", "/accounts/1001"))
        assert shown["name"] == "basic" and shown["slots"] == {"fast": 3, "relax": 0}
        assert shown["state"] == "paused"
        assert shown["history"][0]["what"] == "state"
        assert shown["history"][0]["from"] == "active" and shown["history"][0]["to"] == "paused"
        assert shown["history"][0]["at"].endswith("Z")
        missing = await call(h, "GET", "/accounts/999")
        assert error(missing, 404) == {"type": "account_not_found", "bot_id": 999}


async def test_put_creates_then_replaces(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        body = {"name": "new", "plan": "pro", "fast_hours_left": 10, "tags": ["x"],
                "renews_at": "2030-01-01T00:00:00Z"}  # fmt: skip
        created = data(await call(h, "PUT", "/accounts/2001", body=body), 201)
        assert created["action"] == "created"
        account = created["account"]
        assert account["bot_id"] == 2001 and account["fast_seconds_left"] == 36000
        assert account["renews_at"] == "2030-01-01T00:00:00Z" and account["tags"] == ["x"]
        assert account["slots"] == {"fast": 12, "relax": 3}
        again = data(await call(h, "PUT", "/accounts/2001", body={**body, "bot_id": 2001}))
        assert again["action"] == "unchanged"
        unix = {**body, "weight": 3, "renews_at": 1893456000}  # the same instant, unix seconds
        replaced = data(await call(h, "PUT", "/accounts/2001", body=unix))
        assert replaced["action"] == "updated" and replaced["account"]["weight"] == 3
        assert replaced["account"]["renews_at"] == "2030-01-01T00:00:00Z"


async def test_patch_changes_only_the_given_fields(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        first = data(
            await call(
                h, "PATCH", "/accounts/1003", body={"fast_hours_left": 2.5, "reason": "from /info"}
            )
        )
        account = first["account"]
        assert account["fast_seconds_left"] == 9000 and account["plan"] == "pro"
        entry = account["history"][0]
        assert entry["what"] == "fast_time" and entry["to"] == 9000
        assert entry["reason"] == "operator: from /info"

        second = data(
            await call(
                h,
                "PATCH",
                "/accounts/1003",
                body={"weight": 5, "tags": ["a", "b"], "name": "renamed"},
            )
        )
        account = second["account"]
        assert account["weight"] == 5 and account["tags"] == ["a", "b"]
        assert account["name"] == "renamed"
        assert account["fast_seconds_left"] == 9000  # the correction stands
        assert account["slots"] == {"fast": 12, "relax": 3}

        plan = data(await call(h, "PATCH", "/accounts/1002", body={"plan": "pro"}))["account"]
        assert plan["plan"] == "pro" and plan["slots"] == {"fast": 12, "relax": 3}

        body = {"setting": "relax", "reason": "saving hours"}  # a declared figure: its reason
        relaxed = data(await call(h, "PATCH", "/accounts/1002", body=body))["account"]
        entry = relaxed["history"][0]
        assert (entry["what"], entry["to"]) == ("setting", "relax")
        assert entry["reason"] == "operator: saving hours"

        none_left = data(await call(h, "PATCH", "/accounts/1004", body={"fast_hours_left": 0}))[
            "account"
        ]
        assert none_left["fast_seconds_left"] == 0 and none_left["setting"] == "relax"
        assert none_left["declared_setting"] == "fast"

        paused = data(
            await call(
                h, "PATCH", "/accounts/1004", body={"state": "paused", "reason": "captcha by hand"}
            )
        )
        assert paused["account"]["state"] == "paused"
        assert paused["account"]["state_reason"] == "operator: captcha by hand"
        assert (
            error(await call(h, "PATCH", "/accounts/999", body={"weight": 2}), 404)["type"]
            == "account_not_found"
        )


async def test_delete_account(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        assert data(await call(h, "DELETE", "/accounts/1001")) == {"bot_id": 1001, "removed": True}
        assert error(await call(h, "GET", "/accounts/1001"), 404)["type"] == "account_not_found"
        assert error(await call(h, "DELETE", "/accounts/1001"), 404)["bot_id"] == 1001


async def test_delete_with_tasks_in_flight(redis: Redis, prefix: str) -> None:
    config = EmulatorConfig(pending_seconds=0.5, processing_seconds=0.5)
    only = (AccountSpec(2001, name="only", plan=Plan.PRO),)
    async with harness(redis, prefix, accounts=only, emulator_config=config) as h:
        created = await h.create(prompt="x --fast")
        assert created.headers["x-mjgate-bot-id"] == "2001"
        task_id = created.json()["data"]["task_id"]

        busy = await call(h, "DELETE", "/accounts/2001")
        assert error(busy, 409) == {"type": "account_busy", "bot_id": 2001, "in_flight": 1}
        assert data(await call(h, "GET", "/accounts/2001"))["in_flight"]["fast"] == 1

        forced = await call(h, "DELETE", "/accounts/2001?force=true")
        assert data(forced)["removed"] is True
        # the task in flight still finishes and settles, touching nothing but itself
        done = await h.wait_status(task_id, "completed")
        assert done["status"] == "completed"
        snapshot = await h.gate.catalog.pool_snapshot()
        assert snapshot.account_count == 0
        assert snapshot.slots_in_use[SlotKind.FAST] == 0
        assert snapshot.fast_seconds_left == 0
        assert error(await call(h, "GET", "/accounts/2001"), 404)["type"] == "account_not_found"


async def test_state_changes(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        until = time.time() + 600
        cooled = data(
            await call(
                h,
                "POST",
                "/accounts/1003/state",
                body={"state": "cooling", "until": until, "reason": "429s"},
            )
        )
        assert cooled["state"] == "cooling" and cooled["state_reason"] == "operator: 429s"
        assert cooled["state_until"] is not None and cooled["state_until"].endswith("Z")
        assert cooled["history"][0]["to"] == "cooling"
        # found from outside: the two said 00:40:31Z and 00:40:32Z; both round up
        assert cooled["available"]["why_not"] == f"cooling until {cooled['state_until']}"
        for state in ("draining", "paused", "disabled", "active"):
            shown = data(await call(h, "POST", "/accounts/1003/state", body={"state": state}))
            assert shown["state"] == state and shown["state_until"] is None
        history = data(await call(h, "GET", "/accounts/1003"))["history"]
        assert [e["to"] for e in history] == ["active", "disabled", "paused", "draining",
                                              "cooling"]  # fmt: skip
        assert all(e["reason"].startswith("operator") for e in history)
        unknown = await call(h, "POST", "/accounts/999/state", body={"state": "paused"})
        assert error(unknown, 404)["type"] == "account_not_found"


BAD_PAYLOADS: list[tuple[str, str, Any, str]] = [
    ("PUT", "/accounts/2001", b"{nope", "body"),
    ("PUT", "/accounts/2001", b"[1]", "body"),
    ("PUT", "/accounts/2001", {"plan": "gold"}, "plan"),
    ("PUT", "/accounts/2001", {"setting": "turbo"}, "setting"),
    ("PUT", "/accounts/2001", {"weight": 0}, "weight"),
    ("PUT", "/accounts/2001", {"weight": "2"}, "weight"),
    ("PUT", "/accounts/2001", {"fast_slots": -1}, "fast_slots"),
    ("PUT", "/accounts/2001", {"relax_slots": 5000}, "relax_slots"),
    ("PUT", "/accounts/2001", {"fast_hours_left": -1}, "fast_hours_left"),
    ("PUT", "/accounts/2001", {"renews_at": "soon"}, "renews_at"),
    ("PUT", "/accounts/2001", {"tags": "a"}, "tags"),
    ("PUT", "/accounts/2001", {"tags": [""]}, "tags.0"),
    ("PUT", "/accounts/2001", {"state": "cooling"}, "state"),
    ("PUT", "/accounts/2001", {"bot_id": 7}, "bot_id"),
    ("PUT", "/accounts/2001", {"colour": "red"}, "colour"),
    ("PUT", "/accounts/2001", {"plan": "basic", "relax_slots": 2}, "relax_slots"),
    ("PUT", "/accounts/abc", {}, "bot_id"),
    ("PUT", "/accounts/0", {}, "bot_id"),
    ("PATCH", "/accounts/1002", {}, "body"),
    ("PATCH", "/accounts/1002", {"weight": None}, "weight"),
    ("PATCH", "/accounts/1002", {"fast_hours_left": "3"}, "fast_hours_left"),
    ("PATCH", "/accounts/1002", {"state": "cooling"}, "state"),
    ("PATCH", "/accounts/1001", {"relax_slots": 2}, "relax_slots"),
    ("POST", "/accounts/1002/state", {}, "state"),
    ("POST", "/accounts/1002/state", {"state": "sleeping"}, "state"),
    ("POST", "/accounts/1002/state", {"state": "cooling"}, "until"),
    ("POST", "/accounts/1002/state", {"state": "cooling", "until": 1}, "until"),
    ("POST", "/accounts/1002/state", {"state": "paused", "until": 4e9}, "until"),
    ("POST", "/accounts/1002/state", {"state": "paused", "reason": 5}, "reason"),
    ("POST", "/keys", {}, "name"),
    ("POST", "/keys", {"name": ""}, "name"),
    ("POST", "/keys", {"name": "k", "allowed_modes": ["slow"]}, "allowed_modes.0"),
    ("POST", "/keys", {"name": "k", "allowed_modes": []}, "allowed_modes"),
    ("POST", "/keys", {"name": "k", "rate_per_minute": 0}, "rate_per_minute"),
    ("POST", "/keys", {"name": "k", "staged_limit": "5"}, "staged_limit"),
    ("POST", "/keys", {"name": "k", "tags": [1]}, "tags.0"),
    ("DELETE", "/accounts/1002?force=maybe", None, "force"),
    ("POST", "/pool/apply?dry_run=perhaps", POOL_FILE, "dry_run"),
    ("POST", "/pool/apply", b"\xff\xfe", "body"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_PAYLOADS,
                         ids=[f"{m} {p} {f}" for m, p, _, f in BAD_PAYLOADS])  # fmt: skip
async def test_bad_payloads_are_400_naming_the_field(
    redis: Redis, prefix: str, method: str, path: str, body: Any, field: str
) -> None:
    async with harness(redis, prefix) as h:
        if isinstance(body, bytes):
            answer = await call(h, method, path, content=body)
        else:
            answer = await call(h, method, path, **_request(method, path, body))
        details = error(answer, 400)
        assert details == {"type": "invalid_request", "field": field}
        assert answer.json()["message"].startswith(f"{field}: ")
        # nothing was changed
        assert len(await h.gate.catalog.list_accounts()) == 4


async def test_invalid_pool_file_names_the_line(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        text = "accounts:\n  - bot_id: 1\n    plan: gold\n"
        answer = await call(h, "POST", "/pool/apply", content=text.encode())
        assert error(answer, 400) == {"type": "invalid_pool_file", "line": 3}
        assert "gold" in answer.json()["message"]
        assert len(await h.gate.catalog.list_accounts()) == 4
        # found from outside: a time zone that is not text (here YAML's null) was a 500
        text = "pacing:\n  timezone:\naccounts:\n  - bot_id: 1\n"
        dry = await call(h, "POST", "/pool/apply?dry_run=true", content=text.encode())
        assert error(dry, 400) == {"type": "invalid_pool_file", "line": 2}


async def test_keys_lifecycle(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        created = data(await call(h, "POST", "/keys", body={"name": "team-a"}), 201)
        secret, kid = created["secret"], created["id"]
        assert secret.startswith("mjg_") and len(kid) == 16
        assert created["allowed_modes"] is None and created["rate_per_minute"] is None
        listed = await call(h, "GET", "/keys")
        assert [k["id"] for k in data(listed)["keys"]] == [kid]
        assert secret not in listed.text and "secret" not in data(listed)["keys"][0]
        async for name in redis.scan_iter(match=f"{prefix}:*"):
            if (await redis.type(name)) == b"hash":
                assert secret.encode() not in repr(await redis.hgetall(name)).encode()

        task = await h.create(prompt="x --fast", key=secret)
        assert task.status_code == 200, task.text
        task_id = task.json()["data"]["task_id"]
        shown = data(await call(h, "GET", f"/tasks/{task_id}"))
        assert shown["client_id"] == kid

        assert data(await call(h, "DELETE", f"/keys/{kid}")) == {"id": kid, "revoked": True}
        refused = await h.create(prompt="x --fast", key=secret)
        assert error(refused, 401)["type"] == "invalid_api_key"
        assert error(await call(h, "DELETE", f"/keys/{kid}"), 404)["type"] == "not_found"
        assert data(await call(h, "GET", "/keys"))["keys"] == []
        # a client key still can't reach the admin API, revoked or not
        assert (
            error(await call(h, "GET", "/keys", headers={"x-api-key": CLIENT_KEY}), 403)["type"]
            == "forbidden"
        )


async def test_relax_only_key_runs_fast_requests_relax(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        key = data(
            await call(h, "POST", "/keys", body={"name": "relax", "allowed_modes": ["relax"]}), 201
        )
        assert key["allowed_modes"] == ["relax"]
        for prompt, body_mode in (("x --fast", None), ("x --turbo", None), ("x", "fast")):
            extra = {"process_mode": body_mode} if body_mode else {}
            answer = await h.create(prompt=prompt, key=key["secret"], **extra)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-mjgate-mode"] == "relax"
            assert int(answer.headers["x-mjgate-bot-id"]) != 1001  # never the basic account
        free = await h.create(prompt="x --fast")
        assert free.headers["x-mjgate-mode"] == "fast"


async def test_tag_limited_key_only_reaches_its_accounts(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(2001, plan=Plan.PRO, tags=("studio",)),
                AccountSpec(2002, plan=Plan.PRO, tags=("other",)),
                AccountSpec(2003, plan=Plan.PRO))  # fmt: skip
    async with harness(redis, prefix, accounts=accounts) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "s", "tags": ["studio"]}), 201)
        bots = set()
        for _ in range(6):
            answer = await h.create(prompt="x --fast", key=key["secret"])
            assert answer.status_code == 200, answer.text
            bots.add(answer.headers.get("x-mjgate-bot-id"))
        assert bots == {"2001"}


async def test_rate_limited_key_gets_429_with_retry_after(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "r", "rate_per_minute": 2}), 201)
        for _ in range(2):
            assert (await h.create(prompt="x --fast", key=key["secret"])).status_code == 200
        limited = await h.create(prompt="x --fast", key=key["secret"])
        details = error(limited, 429)
        assert details["type"] == "rate_limited" and details["limit"] == 2
        assert int(limited.headers["retry-after"]) >= 1
        assert (await h.create(prompt="x --fast")).status_code == 200  # others unaffected


async def test_task_show_has_the_decision_and_history(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        created = await h.create(prompt="x --fast")
        task_id = created.json()["data"]["task_id"]
        await h.wait_status(task_id, "completed")
        shown = data(await call(h, "GET", f"/tasks/{task_id}"))
        assert shown["task_id"] == task_id and shown["status"] == "completed"
        assert shown["decision"] == "routed" and shown["mode"] == "fast"
        assert shown["requested_mode"] == "fast"
        assert shown["bot_id"] == int(created.headers["x-mjgate-bot-id"])
        assert shown["upstream_id"] and shown["upstream_id"] != task_id
        assert [e["what"] for e in shown["history"]][:1] == ["sent"]
        assert shown["history"][-1]["what"] == "completed"
        assert shown["request"]["input"]["prompt"] == "x --fast"
        assert shown["upstream_task"]["status"] == "completed"
        missing = await call(h, "GET", "/tasks/nope")
        assert error(missing, 404) == {"type": "not_found", "task_id": "nope"}


async def test_pool_status_totals(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        await h.gate.store.set_state(1004, AccountState.PAUSED)
        pool = data(await call(h, "GET", "/pool"))
        assert pool["accounts"] == 4 and pool["strategy"] == "least_busy"
        assert pool["by_plan"] == {"basic": 1, "standard": 1, "pro": 1, "mega": 1}
        assert pool["by_state"] == {"active": 3, "paused": 1}
        assert pool["by_setting"] == {"fast": 4}
        # capacity counts active accounts only (the ones taking new work)
        assert pool["slots"] == {"fast": {"capacity": 18, "in_use": 0},
                                 "relax": {"capacity": 6, "in_use": 0}}  # fmt: skip
        assert pool["fast_seconds_left"] == int(3.3 * 3600) + (15 + 30 + 60) * 3600
        # what routing can spend: not the paused account's 60 h
        assert pool["fast_seconds_usable"] == int(3.3 * 3600) + (15 + 30) * 3600
        assert (pool["fast_hours_usable"], pool["fast_hours_held"]) == (48.3, 0)
        assert pool["relax_capable"] == 2 and pool["staged"] == 0


async def test_pool_apply_dry_run_then_idempotent_apply_and_export(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        dry = data(await call(h, "POST", "/pool/apply?dry_run=true", content=POOL_FILE.encode()))
        diff = {(c["bot_id"], c["action"], tuple(c["fields"])) for c in dry["changes"]}
        assert diff == {(None, "updated", ("strategy",)), (1002, "updated", ("weight",)),
                        (3001, "created", ()), (1001, "removed", ()), (1003, "removed", ()),
                        (1004, "removed", ())}  # fmt: skip
        assert dry["dry_run"] is True
        assert dry["counts"] == {"updated": 2, "created": 1, "removed": 3}
        assert len(await h.gate.catalog.list_accounts()) == 4  # nothing changed

        applied = data(await call(h, "POST", "/pool/apply", content=POOL_FILE.encode()))
        assert applied["dry_run"] is False
        assert applied["changes"] == dry["changes"]
        accounts = data(await call(h, "GET", "/accounts"))["accounts"]
        assert [(a["bot_id"], a["weight"]) for a in accounts] == [(1002, 3), (3001, 1)]
        assert accounts[1]["fast_seconds_left"] == 45000 and accounts[1]["tags"] == ["studio"]

        again = data(await call(h, "POST", "/pool/apply", content=POOL_FILE.encode()))
        assert again["counts"] == {"unchanged": 2}
        assert {c["action"] for c in again["changes"]} == {"unchanged"}

        exported = data(await call(h, "GET", "/pool/export"))["yaml"]
        pool = parse_pool_file(exported)
        assert pool.strategy.value == "weighted"
        assert [(s.bot_id, s.weight, s.tags) for s in pool.accounts] == [
            (1002, 3, ()), (3001, 1, ("studio",))]  # fmt: skip
        # the export applies as a no-op: it is the pool's truth
        back = data(await call(h, "POST", "/pool/apply", content=exported.encode()))
        assert back["counts"] == {"unchanged": 2}


async def test_admin_api_alone_on_its_own_app(redis: Redis, prefix: str) -> None:
    """`admin_only_app` (the admin API on its own port) shares the main app's state."""
    async with harness(redis, prefix) as h:
        alone = admin_only_app(h.app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=alone),
                                     base_url="http://localhost:8081") as client:  # fmt: skip
            accounts = await client.get("/admin/v1/accounts", headers=ADMIN)
            assert [a["bot_id"] for a in data(accounts)["accounts"]] == [1001, 1002, 1003, 1004]
            forbidden = await client.get("/admin/v1/pool", headers={"x-api-key": CLIENT_KEY})
            assert error(forbidden, 403)["type"] == "forbidden"
            paused = await client.post("/admin/v1/accounts/1002/state", headers=ADMIN,
                                       json={"state": "paused"})  # fmt: skip
            assert data(paused)["state"] == "paused"
            assert (await h.gate.catalog.get_account(1002)).state is AccountState.PAUSED
            # only the admin API is served there
            task = await client.post("/api/v1/task", headers={"x-api-key": CLIENT_KEY},
                                     json={"model": "midjourney"})  # fmt: skip
            assert error(task, 404)["type"] == "not_found"


async def test_notifications_endpoint_gives_what_goapi_needs(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        where = data(await call(h, "GET", "/notifications"))
        token = goapi_token(h.settings, "notifications")
        assert where["path"] == f"/webhooks/goapi/notifications/{token}"
        assert where["url"] == f"http://localhost:8080{where['path']}"  # MJGATE_PUBLIC_URL
        assert where["secret"] == goapi_secret(h.settings)
        body = {"type": "mj_bot_captcha_required", "detail": {"bot_id": 1002}}
        sent = await h.client.post(where["path"], json=body,
                                   headers={"x-webhook-secret": where["secret"]})  # fmt: skip
        assert sent.status_code == 200
        assert (await h.gate.catalog.get_account(1002)).state is AccountState.PAUSED
