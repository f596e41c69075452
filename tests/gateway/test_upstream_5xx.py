"""A create the upstream answers with a 5xx (docs/lifecycle.md, "Upstream answers to a create").

The faults are the emulator's own (`POST /_emulator/faults`: it answers the status and creates
nothing) or, for exact bodies and headers, `FaultyTransport` responses. A 5xx is never retried
on another account; the client gets `upstream_unavailable` with nothing held, the upstream
front's gateway timeout is ambiguous (kept, as a read timeout), and a 5xx about the request is
the client's 400.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.tasks.refusals import Refusal, classify
from gateway.upstream import UpstreamAnswer
from routing.model import AccountState
from tests.harness import Harness, harness


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert body["code"] == response.status_code and body["data"] is None and body["message"]
    error: dict[str, object] = body["error"]
    return error


async def held(h: Harness) -> tuple[int, int]:
    """(tasks in flight, fast seconds reserved) over the whole pool."""
    accounts = await h.gate.catalog.list_accounts()
    return sum(a.in_flight for a in accounts), sum(a.fast_seconds_reserved for a in accounts)


def failed(h: Harness) -> float:
    labels = {"task_type": "imagine", "mode": "fast", "status": "failed"}
    return h.registry.get_sample_value("mjgate_tasks_finished_total", labels) or 0.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_is_upstream_unavailable_released_and_never_sent_elsewhere(
    redis: Redis, prefix: str, status: int
) -> None:
    async with harness(redis, prefix, notifications=False) as h:
        await h.emulator.post("/_emulator/faults", json={"status": status})
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 502, answer.text
        error = error_of(answer)
        assert error["type"] == "upstream_unavailable" and error["upstream_status"] == status
        assert answer.headers["retry-after"] == "5" and error["retry_after"] == 5
        assert h.faulty.creates == 1  # not tried on another account
        assert [r["status"] for r in await h.received()] == [status]
        assert await held(h) == (0, 0)  # slot and fast time released at once
        assert failed(h) == 1
        accounts = await h.gate.catalog.list_accounts()
        assert {a.state for a in accounts} == {AccountState.ACTIVE}  # no account blamed
        again = await h.create(prompt="y --fast")  # the next create is not held back
        assert again.status_code == 200, again.text
        assert await h.assert_ran_as_routed() == 1


async def test_the_emulators_503_with_retry_after_pauses_creates(redis: Redis, prefix: str) -> None:
    """End to end with the emulator's own fault (a 503 carrying `Retry-After`, as GoAPI's
    front sends when it says when to come back): the create that heard it is released, the
    next one is refused before reaching the upstream, with what is left of the wait."""
    async with harness(redis, prefix, notifications=False) as h:
        fault = {"status": 503, "retry_after": 30}
        await h.emulator.post("/_emulator/faults", json=fault)
        heard = await h.create(prompt="x --fast")
        assert heard.status_code == 502 and error_of(heard)["type"] == "upstream_unavailable"
        assert heard.headers["retry-after"] == "30"
        paused = await h.create(prompt="y --fast")
        assert paused.status_code == 503, paused.text
        error = error_of(paused)
        assert (
            error["type"] == "upstream_unavailable" and 29 <= int(str(error["retry_after"])) <= 30
        )
        assert [r["status"] for r in await h.received()] == [503]  # the second never went up
        assert await held(h) == (0, 0)


async def test_a_5xx_passes_the_upstreams_retry_after_on(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        body = {"code": 500, "data": None, "message": "service busy"}  # (a 503's pauses)
        h.faulty.faults = [httpx.Response(500, json=body, headers={"retry-after": "30"})]
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 502 and error_of(answer)["type"] == "upstream_unavailable"
        assert answer.headers["retry-after"] == "30"
        assert "service busy" in answer.json()["message"]
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=40), usegmt=True)
        h.faulty.faults = [httpx.Response(502, json=body, headers={"retry-after": when})]
        dated = await h.create(prompt="z --fast")  # an HTTP-date: seconds from now
        assert dated.status_code == 502 and dated.headers["retry-after"] in ("39", "40")
        h.faulty.faults = [httpx.Response(500, content=b"<html>Internal Server Error</html>")]
        html = await h.create(prompt="y --fast")
        assert html.status_code == 502 and error_of(html)["type"] == "upstream_unavailable"
        assert "<html>" not in html.json()["message"]  # a page is not a message
        assert await held(h) == (0, 0)


async def test_a_gateway_timeout_is_ambiguous_keeps_the_reservation_and_is_never_resent(
    redis: Redis, prefix: str
) -> None:
    """The upstream's front (504) gave up waiting after passing the create on: the task may
    exist, as after mjgate's own read timeout. Kept until the reconciler ends it."""
    quick = Settings(lease_seconds=0.5, upstream_timeout=0.5, upstream_connect_timeout=0.2)
    async with harness(redis, prefix, settings=quick) as h:
        await h.emulator.post("/_emulator/faults", json={"status": 504})
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 504, answer.text
        error = error_of(answer)
        assert error["type"] == "upstream_timeout" and error["upstream_status"] == 504
        in_flight, _ = await held(h)
        assert in_flight == 1  # the lease is kept until the reconciler knows
        for _ in range(100):
            await h.gate.tasks.checker.reconcile()
            if await held(h) == (0, 0):
                break
            await asyncio.sleep(0.05)
        assert await held(h) == (0, 0)
        assert h.faulty.creates == 1  # never re-sent


async def test_a_5xx_about_the_request_is_the_clients_400(redis: Redis, prefix: str) -> None:
    """GoAPI answers a prompt format problem with a 500 ([M]): the client's error, never a 5xx
    from mjgate, never retried."""
    async with harness(redis, prefix) as h:
        message = "Invalid Param Format: there should be space before --"
        h.faulty.faults = [
            httpx.Response(500, json={"code": 500, "data": None, "message": message})
        ]
        answer = await h.create(prompt="x--fast")
        assert answer.status_code == 400, answer.text
        error = error_of(answer)
        assert error["type"] == "upstream_rejected" and error["upstream_status"] == 500
        assert answer.json()["message"] == message
        assert h.faulty.creates == 1 and await held(h) == (0, 0)


def _answer(status: int, raw: bytes) -> UpstreamAnswer:
    return UpstreamAnswer(status, None, raw, httpx.Headers(), 0.0)


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (500, b"Internal Server Error", Refusal.UPSTREAM_FAILED),
        (502, b"<html>Bad Gateway</html>", Refusal.UPSTREAM_FAILED),
        (503, b"", Refusal.UPSTREAM_FAILED),
        (504, b"Gateway Timeout", Refusal.GATEWAY_TIMEOUT),
        (524, b"A timeout occurred", Refusal.GATEWAY_TIMEOUT),
        (500, b"Invalid Param Format: there should be space before --", Refusal.REQUEST),
        (500, b"mj_bot_banned: account banned", Refusal.BANNED),  # the account's, any status
        (400, b"prompt refused", Refusal.REQUEST),
        (429, b"slow down", Refusal.RATE_LIMITED),
    ],
)
def test_what_a_non_2xx_create_answer_means(status: int, raw: bytes, expected: Refusal) -> None:
    assert classify(_answer(status, raw)) is expected


async def test_a_retry_with_the_same_idempotency_key_after_a_5xx_is_a_new_attempt(
    redis: Redis, prefix: str
) -> None:
    """Nothing ran and nothing is held: the key is free again (a client retrying a 502 with
    the key it used gets a task, not the failed attempt back)."""
    async with harness(redis, prefix, notifications=False) as h:
        headers = {"idempotency-key": "order-5xx"}
        await h.emulator.post("/_emulator/faults", json={"status": 503})
        assert (await h.create(prompt="x --fast", headers=headers)).status_code == 502
        again = await h.create(prompt="x --fast", headers=headers)
        assert again.status_code == 200 and "idempotent-replayed" not in again.headers
        assert again.json()["data"]["status"] != "failed"
        same = await h.create(prompt="x --fast", headers=headers)  # now it names that task
        assert same.headers["idempotent-replayed"] == "true"
        assert same.json()["data"]["task_id"] == again.json()["data"]["task_id"]
        assert [r["status"] for r in await h.received()] == [503, 200]


async def test_a_gateway_timeout_keeps_the_idempotency_key(redis: Redis, prefix: str) -> None:
    """A 504 may have created the task: the same key answers it, never a second create."""
    async with harness(redis, prefix, notifications=False) as h:
        headers = {"idempotency-key": "order-504"}
        await h.emulator.post("/_emulator/faults", json={"status": 504})
        first = await h.create(prompt="x --fast", headers=headers)
        assert first.status_code == 504
        task_id = first.json()["error"]["task_id"]
        again = await h.create(prompt="x --fast", headers=headers)
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json()["data"]["task_id"] == task_id
        assert len(await h.received()) == 1
