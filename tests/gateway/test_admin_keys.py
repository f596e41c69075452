"""Changing a managed key's policy (PATCH /admin/v1/keys/{id}), in process against the emulator
and a real Redis: a merge with the stored policy under create's rules, null back to create's
default, 404, static keys refused, and the key's usage (quota counts, tasks in flight) kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from gateway.keys.client import key_id
from routing.accounts import AccountSpec
from routing.model import Plan
from routing.results import Outcome
from tests.gateway.test_admin import call, data, error
from tests.harness import CLIENT_KEY, harness

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster

SLOW = EmulatorConfig(pending_seconds=30, processing_seconds=30)  # tasks hold their slots
TEAM = {"name": "team", "allowed_modes": ["relax"], "tags": ["studio"], "rate_per_minute": 100,
        "jobs_per_day": 2, "fast_hours_per_month": 2.5, "timezone": "Europe/Paris",
        "expires_at": "2099-01-01T00:00:00Z"}  # fmt: skip


async def test_patch_merges_with_the_stored_policy(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        created = data(await call(h, "POST", "/keys", body=TEAM), 201)
        kid = created["id"]
        body = {"jobs_per_day": 5, "weight": 3, "name": "team-b"}
        changed = data(await call(h, "PATCH", f"/keys/{kid}", body=body))
        view = {k: v for k, v in created.items() if k != "secret"}
        assert view["expires_at"] == TEAM["expires_at"]  # ISO 8601 UTC, as every admin time
        assert changed == {**view, "jobs_per_day": 5, "weight": 3, "name": "team-b"}
        assert "secret" not in changed
        assert data(await call(h, "GET", "/keys"))["keys"] == [changed]
        # null: what create gives when the field is absent
        cleared = {"allowed_modes": None, "tags": None, "rate_per_minute": None,
                   "timezone": None, "expires_at": None, "fast_hours_per_month": None,
                   "weight": None}  # fmt: skip
        again = data(await call(h, "PATCH", f"/keys/{kid}", body=cleared))
        assert again == {**changed, "allowed_modes": None, "tags": [], "rate_per_minute": None,
                         "timezone": "UTC", "expires_at": None, "fast_seconds_per_month": None,
                         "weight": 1}  # fmt: skip
        # the secret still works, with the policy of now: fast is no longer capped to relax
        task = await h.create(prompt="x --fast", key=created["secret"])
        assert task.status_code == 200 and task.headers["x-mjgate-mode"] == "fast", task.text


async def test_an_empty_patch_is_400_for_keys_as_for_accounts(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        kid = data(await call(h, "POST", "/keys", body=TEAM), 201)["id"]
        before = data(await call(h, "GET", "/keys"))
        for path in (f"/keys/{kid}", "/accounts/1002"):
            for body in (b"{}", b""):
                answer = await call(h, "PATCH", path, content=body)
                assert error(answer, 400) == {"type": "invalid_request", "field": "body"}
                assert answer.json()["message"] == "body: names no field to change"
        assert data(await call(h, "GET", "/keys")) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobs_per_day": -1}, "jobs_per_day"),
        ({"allowed_modes": ["slow"]}, "allowed_modes.0"),
        ({"allowed_modes": []}, "allowed_modes"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"weight": 0}, "weight"),
        ({"staged_limit": "5"}, "staged_limit"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"secret": "mjg_x"}, "secret"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ([], "body"),
        (b"{", "body"),
    ],
)
async def test_a_bad_field_is_400_naming_it_and_changes_nothing(
    redis: Redis, prefix: str, body: Any, field: str
) -> None:
    async with harness(redis, prefix) as h:
        created = data(await call(h, "POST", "/keys", body=TEAM), 201)
        path = f"/keys/{created['id']}"
        answer = await (call(h, "PATCH", path, content=body) if isinstance(body, bytes)
                        else call(h, "PATCH", path, body=body))  # fmt: skip
        details = error(answer, 400)
        assert (details["type"], details["field"]) == ("invalid_request", field)
        assert answer.json()["message"].startswith(f"{field}: ")
        view = {k: v for k, v in created.items() if k != "secret"}
        assert data(await call(h, "GET", "/keys"))["keys"] == [view]


async def test_an_unknown_or_revoked_key_is_404(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        unknown = error(await call(h, "PATCH", "/keys/0123456789abcdef", body={"weight": 2}), 404)
        assert unknown == {"type": "not_found", "key_id": "0123456789abcdef"}
        kid = data(await call(h, "POST", "/keys", body={"name": "gone"}), 201)["id"]
        data(await call(h, "DELETE", f"/keys/{kid}"))
        assert error(await call(h, "PATCH", f"/keys/{kid}", body={"weight": 2}), 404)
        assert data(await call(h, "GET", "/keys"))["keys"] == []  # not brought back
        assert await redis.exists(h.gate.clients.keys.client_key(kid)) == 0


async def test_a_static_key_is_refused_saying_why(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        kid = key_id(CLIENT_KEY)
        answer = await call(h, "PATCH", f"/keys/{kid}", body={"jobs_per_day": 1})
        assert error(answer, 403) == {"type": "forbidden", "key_id": kid}
        assert "MJGATE_CLIENT_KEYS" in answer.json()["message"]
        revoked = await call(h, "DELETE", f"/keys/{kid}")  # nor revoked through the API
        assert error(revoked, 403) == {"type": "forbidden", "key_id": kid}
        assert (await h.create(prompt="x")).status_code == 200  # still unlimited, still valid


async def test_a_raised_quota_keeps_the_counts_of_the_day(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "t", "jobs_per_day": 2}), 201)
        for _ in range(2):
            assert (await h.create(prompt="x", key=key["secret"])).status_code == 200
        assert error(await h.create(prompt="x", key=key["secret"]), 429)["quota"] == "jobs_day"
        data(await call(h, "PATCH", f"/keys/{key['id']}", body={"jobs_per_day": 3}))
        one_more = await h.create(prompt="x", key=key["secret"])
        assert one_more.status_code == 200, one_more.text
        assert one_more.headers["x-mjgate-quota-remaining-jobs-day"] == "0"
        assert error(await h.create(prompt="x", key=key["secret"]), 429)["quota"] == "jobs_day"


async def test_a_change_keeps_the_tasks_in_flight(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, emulator_config=SLOW) as h:
        body = {"name": "t", "max_in_flight": 1}
        key = data(await call(h, "POST", "/keys", body=body), 201)
        running = await h.create(prompt="x", key=key["secret"])
        assert running.json()["data"]["status"] != "staged", running.text
        data(await call(h, "PATCH", f"/keys/{key['id']}", body={"jobs_per_day": 10}))
        held = await h.create(prompt="y", key=key["secret"])  # still 1 of 1 in flight
        assert held.json()["data"]["status"] == "staged", held.text


TAGGED = (
    AccountSpec(bot_id=11, name="x", plan=Plan.PRO, fast_slots=1, tags=("x",)),
    AccountSpec(bot_id=12, name="y", plan=Plan.PRO, fast_slots=1, tags=("y",)),
)


async def test_staged_tasks_follow_a_narrowed_key(redis: Redis, prefix: str) -> None:
    """A key narrowed to the accounts tagged x: its task staged before never runs on y."""
    async with harness(redis, prefix, accounts=TAGGED, emulator_config=SLOW) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "t", "weight": 2}), 201)
        on = {}
        for prompt in ("a --fast", "b --fast"):
            answer = (await h.create(prompt=prompt, key=key["secret"])).json()["data"]
            record = await h.gate.records.load(answer["task_id"])
            on[record.bot_id] = answer["task_id"]
        assert set(on) == {11, 12}
        waiting = (await h.create(prompt="c --fast", key=key["secret"])).json()["data"]
        assert waiting["status"] == "staged"
        data(await call(h, "PATCH", f"/keys/{key['id']}", body={"tags": ["x"], "weight": 3}))
        entry = await h.gate.redis.hgetall(h.gate.store.keys.base + f"stg:{waiting['task_id']}")
        assert (entry[b"t"], entry[b"w"]) == (b'["x"]', b"3")
        await h.gate.tasks.tracker.settle(on[12], Outcome.COMPLETED)  # y frees its slot
        staged_entry = h.gate.store.keys.base + f"stg:{waiting['task_id']}"
        assert await h.gate.redis.exists(staged_entry) == 1  # still queued: y may not take it
        await h.gate.tasks.tracker.settle(on[11], Outcome.COMPLETED)  # x frees its slot
        for _ in range(100):
            record = await h.gate.records.load(waiting["task_id"])
            if record.bot_id:
                break
            await asyncio.sleep(0.05)
        assert record.bot_id == 11


async def test_a_tag_limited_key_hears_which_accounts_it_lacks(redis: Redis, prefix: str) -> None:
    """No account carries the key's tags: the 503 says so (not 'basic-plan accounts')."""
    async with harness(redis, prefix) as h:
        key = data(await call(h, "POST", "/keys", body={"name": "s", "tags": ["studio"]}), 201)
        answer = await h.create(prompt="x --fast", key=key["secret"])
        assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
        assert answer.json()["error"]["type"] == "no_relax_capable_account"
        assert "studio" in answer.json()["message"] and "basic" not in answer.json()["message"]
        assert (await h.create(prompt="y --fast")).status_code == 200  # others: untouched
