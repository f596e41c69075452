"""Nothing a client sends is a 5xx, and nothing it sends leaves a reservation behind: the
cases once found by a fuzz battery, then a property over generated create bodies, task ids
and headers (hypothesis)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from gateway.headerlimit import HeaderLimit
from gateway.webhooks.credentials import goapi_token
from routing.accounts import AccountSpec
from routing.keys import Keys
from routing.model import Plan
from tests.gateway.mocked import STATIC_KEY, Mocked, asgi_call, mocked

ACCOUNTS = (
    AccountSpec(bot_id=1002, name="standard", plan=Plan.STANDARD),
    AccountSpec(bot_id=1003, name="pro", plan=Plan.PRO),
)
# every create the upstream gets is refused as a bad request: whatever mjgate reserved for it
# must be released at once
REFUSED = httpx.Response(400, json={"code": 400, "data": None, "message": "invalid request"})
KEY = {"x-api-key": STATIC_KEY}


def nested(depth: int) -> str:
    """A marker replaced by `depth` nested objects in the body's JSON text (deeper than
    orjson writes)."""
    return f"@nested:{depth}@"


def body_text(body: dict[str, Any]) -> bytes:
    raw = orjson.dumps(body)
    for depth in (20, 300, 400):
        raw = raw.replace(f'"@nested:{depth}@"'.encode(), b'{"a":[' * depth + b"0" + b"]}" * depth)
    return raw


async def nothing_reserved(m: Mocked, redis: Redis, prefix: str) -> None:
    snapshot = await m.app.state.mjgate.catalog.pool_snapshot(per_account=False)
    assert sum(snapshot.slots_in_use.values()) == 0, snapshot.slots_in_use
    assert [k async for k in redis.scan_iter(match=f"{Keys(prefix).base}res:*")] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {"service_mode": ["public"]}}, "config.service_mode"),
        ({"config": {"service_mode": {"a": 1}}}, "config.service_mode"),
        ({"task_type": ["imagine"]}, "task_type"),
        ({"task_type": nested(400)}, "task_type"),
        ({"input": {"prompt": "x", "deep": nested(300)}}, "input"),
        ({"config": {"x": nested(20)}}, "config"),
        ({"input": {"prompt": "x", "many": list(range(20_000))}}, "input"),
        ({"task_type": "pan", "input": {"origin_task_id": "a-1", "direction": ["up"]}},
         "input.direction"),
        ({"task_type": "blend", "input": {"image_urls": ["http://a/1", "http://a/2"],
                                          "dimension": {"x": 1}}}, "input.dimension"),
        ({"task_type": "upscale", "input": {"origin_task_id": "../x", "index": "1"}},
         "input.origin_task_id"),
    ],
)  # fmt: skip
async def test_bad_bodies_are_400_naming_the_field(
    redis: Redis, prefix: str, body: dict[str, Any], field: str
) -> None:
    async with mocked(redis, prefix, accounts=ACCOUNTS, create_answer=REFUSED) as m:
        full = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "x"}, **body}
        answer = await m.client.post("/api/v1/task", content=body_text(full), headers=KEY)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == {"type": "invalid_request", "field": field}
        assert m.sent == []
        await nothing_reserved(m, redis, prefix)


async def test_odd_ids_headers_and_admin_paths_are_4xx(redis: Redis, prefix: str) -> None:
    async with mocked(redis, prefix, admin_token="admin-token-0001") as m:
        admin = [(b"authorization", b"Bearer admin-token-0001")]
        for path in ("/admin/v1/accounts/\u00b2", "/admin/v1/accounts/" + "9" * 5000):
            status, body = await asgi_call(m.app, "GET", path, admin)
            assert status == 400, body
            assert orjson.loads(body)["error"]["field"] == "bot_id"
        for path in ("/webhooks/goapi/tasks/\u00e9\u00e9", "/webhooks/goapi/notifications/\u2603"):
            status, _ = await asgi_call(m.app, "POST", path, [])
            assert status == 404
        path = f"/webhooks/goapi/tasks/{goapi_token(m.app.state.mjgate.settings)}"
        status, body = await asgi_call(m.app, "POST", path, [(b"x-webhook-secret", b"\xe9\xff")])
        assert status == 403, body
        for task_id in ("\x00", "\r\nX-Injected: 1", "a\x00b"):
            status, body = await raw_get_any(m, task_id)
            assert status == 400, body
        assert m.sent == []


async def test_a_trailing_slash_is_no_route_and_never_a_redirect(redis: Redis, prefix: str) -> None:
    """Starlette would answer 307 with a Location built from the Host header: a 404 envelope
    instead, on the client API and the admin API alike."""
    async with mocked(redis, prefix, admin_token="admin-token-0001") as m:
        host = [(b"host", b"evil.example"), (b"x-api-key", KEY_B)]
        admin = [*host, (b"authorization", b"Bearer admin-token-0001")]
        for method, path, headers in (
            ("GET", "/api/v1/task/", host),
            ("POST", "/api/v1/task/", host),
            ("DELETE", "/api/v1/task/", host),
            ("GET", "/admin/v1/accounts/", admin),
        ):
            status, body = await asgi_call(m.app, method, path, headers)
            assert status in (404, 405), (path, status, body)
            assert orjson.loads(body)["error"]["type"], body
            assert b"evil.example" not in body


async def raw_get_any(m: Mocked, task_id: str) -> tuple[int, bytes]:
    return await asgi_call(m.app, "GET", f"/api/v1/task/{task_id}", [(b"x-api-key", KEY_B)])


KEY_B = STATIC_KEY.encode()


async def test_a_client_that_leaves_mid_body_is_not_an_internal_error(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with mocked(redis, prefix, accounts=ACCOUNTS) as m:
        incoming = [
            {"type": "http.request", "body": b'{"model": "midj', "more_body": True},
            {"type": "http.disconnect"},
        ]
        headers = [(b"x-api-key", KEY_B), (b"content-type", b"application/json")]
        status, body = await asgi_call(m.app, "POST", "/api/v1/task", headers, incoming)
        assert status == 400 and orjson.loads(body)["error"]["type"] == "client_disconnected"
        assert "internal_error" not in caplog.text
        assert "client_disconnected" in caplog.text
        await nothing_reserved(m, redis, prefix)


async def test_headers_are_bounded(redis: Redis, prefix: str) -> None:
    async with mocked(redis, prefix) as m:
        app = m.app  # every route of the app is bounded
        big = [(b"x-api-key", KEY_B), (b"x-padding", b"a" * (4 * 1024 * 1024))]
        status, body = await asgi_call(app, "GET", "/api/v1/task/abc", big)
        assert status == 431 and orjson.loads(body)["error"]["type"] == "headers_too_large"
        status, _ = await asgi_call(app, "GET", "/healthz", [(b"x-padding", b"a" * 40_000)])
        assert status == 431
        status, _ = await asgi_call(app, "GET", "/healthz", [(b"x-padding", b"a" * 1000)])
        assert status == 200
        status, _ = await asgi_call(HeaderLimit(app, 100), "GET", "/healthz", big[:1] * 10)
        assert status == 431
        assert m.sent == []


# -- the property -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)
TASK_TYPES = st.sampled_from(
    ["imagine", "upscale", "variation", "reroll", "describe", "blend", "pan", "outpaint",
     "inpaint", "seed", "shorten", "paint"]
)  # fmt: skip
FIELDS = st.sampled_from(
    ["prompt", "aspect_ratio", "process_mode", "skip_prompt_check", "bot_id", "image_url",
     "image_urls", "dimension", "index", "direction", "zoom_ratio", "mask", "origin_task_id"]
)  # fmt: skip
VALUES = JSON | st.sampled_from(
    ["a cat --fast", "16:9", "relax", "fast", "turbo", "1", "2x", "up", "1.5", "square",
     "http://localhost/a.png", "data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64,@@",
     "abc-1", "../x", "\x00", 3, -1, 1.5]
)  # fmt: skip
INPUTS = st.dictionaries(FIELDS, VALUES, max_size=6)
CONFIGS = (
    st.none()
    | JSON
    | st.fixed_dictionaries(
        {},
        optional={
            "service_mode": JSON | st.sampled_from(["", "public", "private"]),
            "webhook_config": JSON | st.fixed_dictionaries({"endpoint": VALUES, "secret": VALUES}),
        },
    )
)
BODIES = st.one_of(
    st.fixed_dictionaries(
        {"model": st.just("midjourney") | JSON, "task_type": TASK_TYPES | JSON},
        optional={"input": INPUTS | JSON, "config": CONFIGS},
    ),
    JSON,
)
IDS = st.text(max_size=80) | st.sampled_from(["..", ".", "%2e%2e", "abc?x=1", "a/b", "x" * 65])
HEADER_VALUES = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
CASES = st.one_of(
    st.tuples(st.just("create"), BODIES, HEADER_VALUES),
    st.tuples(st.sampled_from(["get", "cancel", "alias"]), IDS, HEADER_VALUES),
    st.tuples(st.just("raw"), st.binary(max_size=60), HEADER_VALUES),
    st.tuples(st.just("key"), IDS, HEADER_VALUES),  # an odd key: 401, never a 5xx
)
EXAMPLES = int(os.environ.get("MJGATE_FUZZ_EXAMPLES", "3000"))
VALID_BODY = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "a cat --fast"}}


async def _send(m: Mocked, case: tuple[str, Any, bytes]) -> tuple[int, bytes]:
    kind, value, odd = case
    headers = [(b"x-api-key", KEY_B), (b"idempotency-key", odd), (b"x-odd", odd)]
    if kind == "create":
        return await asgi_call(
            m.app, "POST", "/api/v1/task", headers,
            [{"type": "http.request", "body": orjson.dumps(value), "more_body": False}],
        )  # fmt: skip
    if kind == "key":
        odd_key = [(b"x-api-key", odd), (b"authorization", b"Bearer " + odd)]
        return await asgi_call(m.app, "GET", "/api/v1/task/abc", odd_key)
    if kind == "raw":
        return await asgi_call(
            m.app, "POST", "/api/v1/task", headers,
            [{"type": "http.request", "body": value, "more_body": False}],
        )  # fmt: skip
    method, suffix = {"get": ("GET", ""), "cancel": ("DELETE", ""), "alias": ("POST", "/cancel")}[
        kind
    ]
    path = value if kind == "get" and value.startswith(".") else quote(value, safe="")
    return await asgi_call(m.app, method, f"/api/v1/task/{path}{suffix}", headers[:2])


def test_no_input_is_a_5xx_or_leaves_a_reservation(redis_url: str, prefix: str) -> None:
    loop = asyncio.new_event_loop()
    redis = Redis.from_url(redis_url)
    stack = contextlib.AsyncExitStack()
    try:
        m = loop.run_until_complete(
            stack.enter_async_context(
                mocked(redis, prefix, accounts=ACCOUNTS, create_answer=REFUSED)
            )
        )
        statuses: list[int] = []

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=CASES)
        # one valid body and one invalid body every run, whatever is generated: the
        # assertions below need both kinds
        @example(case=("create", VALID_BODY, b"fuzz-valid"))
        @example(case=("create", {"model": "midjourney", "task_type": "imagine"}, b""))
        def one(case: tuple[str, Any, bytes]) -> None:
            status, body = loop.run_until_complete(_send(m, case))
            statuses.append(status)
            assert status < 500, (case, body)
            assert orjson.loads(body)["error"]["type"] if status >= 400 else True

        one()
        loop.run_until_complete(nothing_reserved(m, redis, prefix))
        assert len(statuses) >= min(EXAMPLES, 1000)
        assert any(s == 400 for s in statuses)
        # some bodies were valid: reserved, sent, refused upstream and released
        assert any(r.method == "POST" and r.url.path == "/api/v1/task" for r in m.sent)
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(redis.aclose())
        loop.close()


ADMIN_TOKEN = "admin-token-0001"
PACING_KEYS = st.sampled_from(
    ["timezone", "active_hours", "actions_only_hours", "daily_caps", "caps_count_children",
     "min_gap_seconds", "gap_jitter_seconds", "tier", "naps"]
)  # fmt: skip
PACING_VALUES = JSON | st.sampled_from(
    ["UTC", "Asia/Kolkata", "Mars/Base", ["09:00-17:00"], ["9:00-17:00"], ["22:00-06:00"] * 30,
     {"fast": 1}, {"relax": -1}, {"fast": 10**7}, "backup", -0.0, 86401, 1e308]
)  # fmt: skip
PACING_BODIES = st.dictionaries(PACING_KEYS, PACING_VALUES, max_size=4) | JSON
ADMIN_CASES = st.one_of(
    # an account's pacing and the pool's default, with any values in their keys
    st.tuples(st.sampled_from(["PUT", "PATCH"]), st.just("/admin/v1/accounts/"),
              st.sampled_from(["1002", "7"]),
              st.fixed_dictionaries({"plan": st.just("pro")}, optional={"pacing": PACING_BODIES})),
    st.tuples(st.sampled_from(["PUT", "PATCH"]), st.just("/admin/v1/pool/pacing"), st.just(""),
              PACING_BODIES),
    st.tuples(st.sampled_from(["PUT", "PATCH", "GET", "DELETE"]),
              st.just("/admin/v1/accounts/") , IDS | st.sampled_from(["1002", "7", "0"]), JSON),
    st.tuples(st.just("POST"), st.just("/admin/v1/accounts/"),
              st.sampled_from(["1002/state", "7/state"]), JSON),
    st.tuples(st.just("POST"), st.just("/admin/v1/keys"), st.just(""), JSON),
    st.tuples(st.just("POST"), st.just("/admin/v1/pool/apply"), st.just(""), JSON),
    st.tuples(st.sampled_from(["tasks", "notifications"]), st.just("/webhooks/goapi/"),
              st.booleans(), JSON),
)  # fmt: skip


async def _send_admin(m: Mocked, case: tuple[str, str, Any, Any]) -> tuple[int, bytes]:
    method, base, tail, value = case
    body = [{"type": "http.request", "body": orjson.dumps(value), "more_body": False}]
    if base == "/webhooks/goapi/":  # signed as GoAPI would: the handlers must take any JSON
        settings_ = m.app.state.mjgate.settings
        from gateway.webhooks.credentials import goapi_secret

        headers = [(b"x-webhook-secret", goapi_secret(settings_).encode())] if tail else []
        if isinstance(value, dict) and tail:
            value = {"data": {**value, "task_id": "no-such-upstream-task"}}
            body[0]["body"] = orjson.dumps(value)
        path = f"{base}{method}/{goapi_token(settings_, method)}"
        return await asgi_call(m.app, "POST", path, headers, body)
    path = base + (quote(tail, safe="/") if tail else "")
    headers = [(b"authorization", f"Bearer {ADMIN_TOKEN}".encode())]
    return await asgi_call(m.app, method, path, headers, body)


def test_no_admin_or_webhook_request_is_a_5xx(redis_url: str, prefix: str) -> None:
    loop = asyncio.new_event_loop()
    redis = Redis.from_url(redis_url)
    stack = contextlib.AsyncExitStack()
    try:
        m = loop.run_until_complete(
            stack.enter_async_context(
                mocked(redis, prefix, accounts=ACCOUNTS, admin_token=ADMIN_TOKEN)
            )
        )

        @settings(
            max_examples=EXAMPLES // 3,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=ADMIN_CASES)
        def one(case: tuple[str, str, Any, Any]) -> None:
            status, body = loop.run_until_complete(_send_admin(m, case))
            assert status < 500, (case, body)

        one()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(redis.aclose())
        loop.close()
