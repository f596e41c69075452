"""The pass-through as a permission of the key: task ids that can't leave their path, who may
forward what, the error envelope of forwarded answers, and mjgate's webhook never shown."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.gateway.mocked import STATIC_KEY, mocked, raw_get
from tests.harness import CLIENT_KEY, harness

ESCAPES = ["..", ".", "%2e%2e", "abc%3Fx=1", "%00", "a%0d%0aX-Injected:%201",
           "a b", "a%2Fb", "x" * 65, "é"]  # fmt: skip


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_an_id_that_is_not_a_task_id_is_400_and_never_forwarded(
    redis: Redis, prefix: str, method: str
) -> None:
    async with mocked(redis, prefix) as m:
        for task_id in ESCAPES:
            answer = await m.client.request(
                method, f"/api/v1/task/{task_id}", headers={"x-api-key": STATIC_KEY}
            )
            # (httpx itself normalises some: `.` becomes /api/v1/task/, a 405)
            assert answer.status_code in (400, 404, 405), (task_id, answer.text)
            assert answer.json()["error"]["type"]
        for path in ("/api/v1/task/..", "/api/v1/task/.", "/api/v1/task/abc?x=1"):
            status, body = await raw_get(m.app, path, STATIC_KEY, method)
            assert status == 400, (path, body)
            assert orjson.loads(body)["error"]["field"] == "task_id"
        assert m.sent == []
        # a plain id goes through, to exactly /api/v1/task/<id>
        await m.client.request(method, "/api/v1/task/abc-DEF_1", headers={"x-api-key": STATIC_KEY})
        assert [r.url.path for r in m.sent] == ["/api/v1/task/abc-DEF_1"]


async def test_cancel_alias_is_the_same_handler(redis: Redis, prefix: str) -> None:
    async with mocked(redis, prefix) as m:
        answer = await m.client.post("/api/v1/task/t-1/cancel", headers={"x-api-key": STATIC_KEY})
        assert answer.json()["error"]["type"] == "upstream_not_found"
        assert [(r.method, r.url.path) for r in m.sent] == [("DELETE", "/api/v1/task/t-1")]
        status, _ = await raw_get(m.app, "/api/v1/task/../cancel", STATIC_KEY, "POST")
        assert status in (400, 404) and len(m.sent) == 1


async def test_forwarded_errors_carry_a_type_and_keep_goapi_message(
    redis: Redis, prefix: str
) -> None:
    async with mocked(redis, prefix) as m:
        headers = {"x-api-key": STATIC_KEY}
        answer = await m.client.get("/api/v1/task/unknown-1", headers=headers)
        body = answer.json()
        assert answer.status_code == 404 and body["code"] == 404
        assert body["message"] == "task not found"
        assert body["error"]["type"] == "upstream_not_found"
        m.answers.append(httpx.Response(502, content=b"<html>bad gateway</html>"))
        answer = await m.client.get("/api/v1/task/unknown-2", headers=headers)
        assert answer.status_code == 502
        assert answer.json()["error"]["type"] == "upstream_unavailable"
        assert "bad gateway" in answer.json()["message"]
        m.answers.append(httpx.Response(429, json={"code": 429, "message": "slow down"}))
        answer = await m.client.post(
            "/api/v1/task", json={"model": "suno", "input": {}}, headers=headers
        )
        assert answer.json()["error"]["type"] == "upstream_rate_limited"
        m.answers.append(httpx.Response(400, json={"code": 400, "message": "bad", "error": {}}))
        answer = await m.client.delete("/api/v1/task/x", headers=headers)
        assert answer.json()["error"] == {"type": "upstream_rejected", "upstream_status": 400}


async def test_static_keys_follow_the_setting(redis: Redis, prefix: str) -> None:
    async with mocked(redis, prefix, static_keys_passthrough=False) as m:
        headers = {"x-api-key": STATIC_KEY}
        other_model = await m.client.post(
            "/api/v1/task", json={"model": "suno", "input": {}}, headers=headers
        )
        assert other_model.status_code == 403
        assert other_model.json()["error"] == {
            "type": "forbidden", "permission": "passthrough_models"}  # fmt: skip
        foreign = await m.client.get("/api/v1/task/abc", headers=headers)
        assert foreign.status_code == 403
        assert foreign.json()["error"]["permission"] == "passthrough_foreign_ids"
        assert (await m.client.post("/api/v1/task/abc/cancel", headers=headers)).status_code == 403
        assert m.sent == []
    async with mocked(redis, prefix) as m:  # the default: the operator's own keys may
        answer = await m.client.post(
            "/api/v1/task", json={"model": "suno", "input": {}}, headers={"x-api-key": STATIC_KEY}
        )
        assert answer.headers["x-mjgate-decision"] == "forwarded"
        assert len(m.sent) == 1


async def test_managed_keys_pass_through_only_what_their_policy_lists(
    redis: Redis, prefix: str
) -> None:
    async with mocked(redis, prefix) as m:
        none = {"x-api-key": await m.managed()}
        suno = {"x-api-key": await m.managed(passthrough_models=("suno",))}
        anything = {"x-api-key": await m.managed(passthrough_models=("*",))}
        foreign = {"x-api-key": await m.managed(passthrough_foreign_ids=True)}
        suno_body = {"model": "suno", "input": {}}
        public = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"},
                  "config": {"service_mode": "public"}}  # fmt: skip
        child = {"model": "midjourney", "task_type": "upscale",
                 "input": {"origin_task_id": "up-1", "index": "1"}}  # fmt: skip

        async def status(method: str, path: str, headers: dict[str, str], body: Any = None) -> int:
            answer = await m.client.request(method, path, json=body, headers=headers)
            if answer.status_code == 403:
                assert answer.json()["error"]["type"] == "forbidden"
            return answer.status_code

        assert await status("POST", "/api/v1/task", none, suno_body) == 403
        assert await status("POST", "/api/v1/task", none, public) == 403
        assert await status("GET", "/api/v1/task/up-1", none) == 403
        assert await status("DELETE", "/api/v1/task/up-1", none) == 403
        assert await status("POST", "/api/v1/task", suno, public) == 403
        assert await status("GET", "/api/v1/task/up-1", suno) == 403
        assert await status("POST", "/api/v1/task", anything, child) == 403  # a foreign parent
        assert await status("POST", "/api/v1/task", foreign, suno_body) == 403
        assert m.sent == []
        assert await status("POST", "/api/v1/task", suno, suno_body) == 404
        assert await status("POST", "/api/v1/task", anything, public) == 404
        assert await status("GET", "/api/v1/task/up-1", foreign) == 404
        assert await status("POST", "/api/v1/task/up-1/cancel", foreign) == 404
        assert len(m.sent) == 4


async def test_policy_fields_in_the_admin_api(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        admin = {"authorization": f"Bearer {h.settings.admin_token}"}
        created = await h.client.post(
            "/admin/v1/keys",
            json={"name": "p", "passthrough_models": ["*"], "passthrough_foreign_ids": True},
            headers=admin,
        )
        key = created.json()["data"]
        assert key["passthrough_models"] == ["*"] and key["passthrough_foreign_ids"] is True
        plain = (await h.client.post("/admin/v1/keys", json={"name": "q"}, headers=admin)).json()
        assert plain["data"]["passthrough_models"] == []
        assert plain["data"]["passthrough_foreign_ids"] is False
        client = await h.gate.clients.lookup(key["secret"])
        assert client.passthrough_models == ("*",) and client.passthrough_foreign_ids


async def test_mjgates_webhook_never_reaches_a_client(redis: Redis, prefix: str) -> None:
    """An upstream id read through the pass-through shows no trace of mjgate's webhook."""
    async with harness(redis, prefix) as h:
        created = (await h.create(prompt="x --fast")).json()["data"]
        record = await h.gate.records.load(created["task_id"])
        assert record.task["config"]["webhook_config"]["secret"] == goapi_secret(h.settings)
        leaks = (goapi_secret(h.settings), goapi_token(h.settings, "tasks"))
        answers = [
            await h.get(record.upstream_id),
            await h.client.delete(
                f"/api/v1/task/{record.upstream_id}", headers={"x-api-key": CLIENT_KEY}
            ),
            await h.get(created["task_id"]),
        ]
        forwarded = answers[0].json()["data"]
        assert forwarded["task_id"] == record.upstream_id  # it was the upstream's task
        assert forwarded["config"]["webhook_config"] == {"endpoint": "", "secret": ""}
        admin = {"authorization": f"Bearer {h.settings.admin_token}"}
        shown = await h.client.get(f"/admin/v1/tasks/{created['task_id']}", headers=admin)
        upstream_task = shown.json()["data"]["upstream_task"]
        assert upstream_task["config"]["webhook_config"] == {"endpoint": "", "secret": ""}
        for answer in [*answers, shown]:
            assert not any(leak in answer.text for leak in leaks), answer.text


async def test_upstream_refusals_show_mjgates_ids(redis: Redis, prefix: str) -> None:
    """The emulator refuses an upscale of an upscale naming the parent by its upstream id;
    the client sees the parent's mjgate id, in the answer and in the failed task."""
    async with harness(redis, prefix) as h:
        grid = (await h.create(prompt="x --fast")).json()["data"]["task_id"]
        await h.wait_status(grid, "completed")
        single = (await h.create("upscale", origin_task_id=grid, index="1")).json()["data"]
        await h.wait_status(single["task_id"], "completed")
        parent = await h.gate.records.load(single["task_id"])
        answer = await h.create("upscale", origin_task_id=single["task_id"], index="1")
        assert answer.status_code == 400, answer.text
        message = answer.json()["message"]
        assert single["task_id"] in message and parent.upstream_id not in message


def accepted(upstream_id: str) -> httpx.Response:
    task = {"task_id": upstream_id, "model": "midjourney", "task_type": "imagine",
            "status": "pending", "input": {}, "config": {}}  # fmt: skip
    return httpx.Response(200, json={"code": 200, "data": task, "message": "success"})


async def test_a_managed_key_never_reaches_mjgates_tasks_by_their_upstream_ids(
    redis: Redis, prefix: str
) -> None:
    """`passthrough_foreign_ids` reaches ids mjgate did not create: the upstream id of a task
    mjgate created (another key's, or the key's own) is 404 and never forwarded, for a read,
    a cancel or a child's parent, finished or not; static keys keep the setting's reach."""
    accounts = (AccountSpec(bot_id=1, name="a", plan=Plan.PRO),)
    async with mocked(redis, prefix, accounts=accounts) as m:
        secret = await m.managed(passthrough_foreign_ids=True, passthrough_models=("*",))
        body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x --fast"}}
        static = {"x-api-key": STATIC_KEY}
        for key, upstream_id in ((STATIC_KEY, "up-others-1"), (secret, "up-own-1")):
            m.answers.append(accepted(upstream_id))
            created = await m.client.post("/api/v1/task", json=body, headers={"x-api-key": key})
            assert created.status_code == 200, created.text
        m.answers.append(accepted("up-done-1"))  # a third, finished: still mjgate's
        created = await m.client.post("/api/v1/task", json=body, headers=static)
        gate = m.app.state.mjgate
        record = await gate.records.load(created.json()["data"]["task_id"])
        await gate.tasks.tracker.apply(
            record, {"task_id": "up-done-1", "status": "completed"}, source="test"
        )
        assert (await gate.records.load(record.task_id)).terminal
        sent = len(m.sent)
        headers = {"x-api-key": secret}
        for upstream_id in ("up-others-1", "up-own-1", "up-done-1"):
            for method, path in (("GET", f"/api/v1/task/{upstream_id}"),
                                 ("DELETE", f"/api/v1/task/{upstream_id}"),
                                 ("POST", f"/api/v1/task/{upstream_id}/cancel")):  # fmt: skip
                answer = await m.client.request(method, path, headers=headers)
                assert answer.status_code == 404, (method, answer.text)
                assert answer.json()["error"]["type"] == "not_found"
                assert upstream_id not in answer.text
            child = await m.client.post("/api/v1/task", headers=headers, json={
                "model": "midjourney", "task_type": "upscale",
                "input": {"origin_task_id": upstream_id, "index": "1"}})  # fmt: skip
            assert child.status_code == 404 and upstream_id not in child.text, child.text
        assert len(m.sent) == sent  # nothing was forwarded
        # an id mjgate did not create still goes through; a static key reaches everything
        await m.client.get("/api/v1/task/not-mjgates-1", headers=headers)
        await m.client.get("/api/v1/task/up-others-1", headers={"x-api-key": STATIC_KEY})
        assert [r.url.path for r in m.sent[sent:]] == [
            "/api/v1/task/not-mjgates-1", "/api/v1/task/up-others-1"]  # fmt: skip
