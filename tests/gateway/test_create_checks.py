"""A refused client webhook is answered at create time; key and account times in the admin API."""

from __future__ import annotations

import re

import pytest
from redis.asyncio import Redis

from gateway.webhooks.outbound import is_private_endpoint
from tests.gateway.mocked import STATIC_KEY, mocked
from tests.gateway.test_bad_input import ACCOUNTS, REFUSED, nothing_reserved
from tests.harness import harness

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://10.0.0.7/hook",
        "http://100.64.3.4/hook",  # carrier-grade NAT
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://host.invalid/hook",  # does not resolve
    ],
)
async def test_a_refused_webhook_is_400_at_create_and_nothing_is_reserved(
    redis: Redis, prefix: str, endpoint: str
) -> None:
    assert await is_private_endpoint(endpoint)
    async with mocked(redis, prefix, accounts=ACCOUNTS, create_answer=REFUSED) as m:
        body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"},
                "config": {"webhook_config": {"endpoint": endpoint, "secret": "s"}}}  # fmt: skip
        answer = await m.client.post("/api/v1/task", json=body, headers={"x-api-key": STATIC_KEY})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == {
            "type": "invalid_request", "field": "config.webhook_config.endpoint"}  # fmt: skip
        assert m.sent == []
        await nothing_reserved(m, redis, prefix)


async def test_private_webhooks_allowed_by_the_setting(redis: Redis, prefix: str) -> None:
    async with mocked(
        redis, prefix, accounts=ACCOUNTS, create_answer=REFUSED, allow_private_webhooks=True
    ) as m:
        body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"},
                "config": {"webhook_config": {"endpoint": "http://10.0.0.7/h"}}}  # fmt: skip
        answer = await m.client.post("/api/v1/task", json=body, headers={"x-api-key": STATIC_KEY})
        assert answer.json()["error"]["type"] == "upstream_rejected"  # it went through


async def test_key_times_are_iso_and_past_renewals_are_refused(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        admin = {"authorization": f"Bearer {h.settings.admin_token}"}
        created = (await h.client.post("/admin/v1/keys", json={"name": "a"}, headers=admin)).json()
        assert ISO.fullmatch(created["data"]["created_at"]), created
        listed = (await h.client.get("/admin/v1/keys", headers=admin)).json()["data"]["keys"]
        assert all(ISO.fullmatch(key["created_at"]) for key in listed)
        for method, body in (
            ("PUT", {"plan": "pro", "renews_at": "2020-01-01T00:00:00Z"}),
            ("PUT", {"plan": "pro", "renews_at": 1_000_000}),
            ("PATCH", {"renews_at": "2021-06-01T00:00:00Z"}),
        ):
            answer = await h.client.request(
                method, "/admin/v1/accounts/1003", json=body, headers=admin
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["field"] == "renews_at"
        answer = await h.client.patch(
            "/admin/v1/accounts/1003", json={"renews_at": "2099-01-01T00:00:00Z"}, headers=admin
        )
        assert answer.status_code == 200
        assert answer.json()["data"]["account"]["renews_at"] == "2099-01-01T00:00:00Z"
        answer = await h.client.patch(
            "/admin/v1/accounts/1003", json={"renews_at": None}, headers=admin
        )
        assert answer.status_code == 200
