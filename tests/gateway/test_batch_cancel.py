"""`DELETE /api/v1/tasks?created_before=&model=`: the key's own staged and pending tasks are
cancelled; nothing of another key is touched; the upstream is asked only for a key that may
reach ids mjgate did not create."""

from __future__ import annotations

import time

import httpx
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.gateway.mocked import STATIC_KEY, mocked
from tests.harness import OTHER_KEY, harness

ONE = (AccountSpec(bot_id=9, name="one", plan=Plan.PRO, fast_slots=1, relax_slots=0),)
SLOW = EmulatorConfig(pending_seconds=30, processing_seconds=30)


async def test_the_keys_own_staged_and_pending_tasks_are_cancelled(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=ONE, emulator_config=SLOW) as h:
        pending = (await h.create(prompt="a --fast")).json()["data"]
        staged = (await h.create(prompt="b --fast")).json()["data"]
        assert (pending["status"], staged["status"]) == ("pending", "staged")
        others = (await h.create(prompt="c --fast", key=OTHER_KEY)).json()["data"]
        before = int(time.time()) + 1
        answer = await h.client.delete(
            f"/api/v1/tasks?created_before={before}&model=midjourney",
            headers={"x-api-key": h.settings.client_keys[0]},
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert sorted(data["cancelled"]) == sorted([pending["task_id"], staged["task_id"]])
        for task_id in (pending["task_id"], staged["task_id"]):
            assert (await h.get(task_id)).json()["data"]["status"] == "failed"
        mine_after = await h.get(others["task_id"], key=OTHER_KEY)
        assert mine_after.json()["data"]["status"] in ("staged", "pending")  # not touched
        account = await h.gate.catalog.get_account(9)
        assert account is not None and account.fast_in_flight <= 1
        again = await h.client.delete(
            f"/api/v1/tasks?created_before={before}&model=midjourney",
            headers={"x-api-key": h.settings.client_keys[0]},
        )
        assert again.json()["data"]["cancelled"] == []  # ended tasks leave the index


async def test_both_parameters_are_required(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, accounts=ONE) as h:
        headers = {"x-api-key": h.settings.client_keys[0]}
        for query in ("", "?model=midjourney", "?created_before=10", "?created_before=x&model=all",
                      "?created_before=10&model=../x"):  # fmt: skip
            answer = await h.client.delete(f"/api/v1/tasks{query}", headers=headers)
            assert answer.status_code == 400, (query, answer.text)
            assert answer.json()["error"]["type"] == "invalid_request"


async def test_the_upstream_is_asked_only_for_a_key_that_may_reach_foreign_ids(
    redis: Redis, prefix: str
) -> None:
    async with mocked(redis, prefix) as m:
        none = {"x-api-key": await m.managed()}
        models = {"x-api-key": await m.managed(passthrough_models=("*",))}
        foreign = {"x-api-key": await m.managed(passthrough_foreign_ids=True)}
        before = int(time.time())

        async def upstream_part(headers: dict[str, str], model: str) -> object:
            answer = await m.client.delete(
                f"/api/v1/tasks?created_before={before}&model={model}", headers=headers
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]["upstream"]

        assert await upstream_part(none, "all") is None
        assert await upstream_part(models, "midjourney") is None  # models, not foreign ids
        assert await upstream_part(foreign, "suno") is None  # foreign ids, not that model
        assert m.sent == []
        m.answers.append(httpx.Response(200, json={"code": 200, "message": "2 task(s) canceled"}))
        assert await upstream_part(foreign, "midjourney") == {
            "status": 200,
            "message": "2 task(s) canceled",
        }
        assert await upstream_part({"x-api-key": STATIC_KEY}, "all") is not None  # the default
        assert [(r.method, r.url.path, dict(r.url.params)) for r in m.sent] == [
            ("DELETE", "/api/v1/tasks", {"created_before": str(before), "model": "midjourney"}),
            ("DELETE", "/api/v1/tasks", {"created_before": str(before), "model": "all"}),
        ]
    async with mocked(redis, prefix, static_keys_passthrough=False) as m:
        answer = await m.client.delete(
            f"/api/v1/tasks?created_before={before}&model=all", headers={"x-api-key": STATIC_KEY}
        )
        assert answer.json()["data"]["upstream"] is None and m.sent == []
