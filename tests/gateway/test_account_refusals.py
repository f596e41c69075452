"""What an account's refusal of a create does (docs/lifecycle.md, "Upstream answers to a
create"): the account paused or cooled, the create tried on the next account until one
accepts, the client told when every account refused; and what is not an account's (a 2xx
without a task, a 429)."""

from __future__ import annotations

import asyncio

import httpx
from redis.asyncio import Redis

from routing.accounts import AccountSpec
from routing.model import AccountState, Plan
from tests.gateway.test_failures import error_type, in_flight
from tests.harness import DEMO, harness


def refusal(message: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"code": status, "data": None, "message": message})


TWO = (
    AccountSpec(bot_id=1, name="first", plan=Plan.PRO),  # most fast time: chosen first
    AccountSpec(bot_id=2, name="second", plan=Plan.STANDARD),
)


async def test_account_level_refusal_pauses_and_retries(redis: Redis, prefix: str) -> None:
    """No notification reaches mjgate: only the upstream's refusal of the create tells it."""
    async with harness(redis, prefix, accounts=TWO, notifications=False) as h:
        first = await h.create(prompt="x --fast")
        assert int(first.headers["x-mjgate-bot-id"]) == 1
        await h.wait_status(first.json()["data"]["task_id"], "completed")
        await h.emulator.post("/_emulator/accounts/1/captcha")
        assert (await h.gate.catalog.get_account(1)).state is AccountState.ACTIVE
        again = await h.create(prompt="x --fast")
        assert again.status_code == 200, again.text
        assert int(again.headers["x-mjgate-bot-id"]) == 2
        runs = [(r["bot_id"], r["status"], r["message"][:24]) for r in await h.received()]
        assert runs == [
            (1, 200, "success"),
            (1, 400, "mj_bot_captcha_required:"),
            (2, 200, "success"),
        ]
        account = await h.gate.catalog.get_account(1)
        assert account.state is AccountState.PAUSED and account.in_flight == 0
        assert await h.assert_ran_as_routed() == 2


async def test_account_notification_pauses_before_any_create(redis: Redis, prefix: str) -> None:
    """The notification path: the account is paused before a create could be refused."""
    async with harness(redis, prefix, accounts=TWO) as h:
        first = await h.create(prompt="x --fast")
        assert int(first.headers["x-mjgate-bot-id"]) == 1
        await h.wait_status(first.json()["data"]["task_id"], "completed")
        await h.emulator.post("/_emulator/accounts/1/captcha")
        for _ in range(500):
            if (await h.gate.catalog.get_account(1)).state is AccountState.PAUSED:
                break
            await asyncio.sleep(0.01)
        assert (await h.gate.catalog.get_account(1)).state is AccountState.PAUSED
        again = await h.create(prompt="x --fast")
        assert int(again.headers["x-mjgate-bot-id"]) == 2
        assert [(r["bot_id"], r["status"]) for r in await h.received()] == [(1, 200), (2, 200)]
        assert await h.assert_ran_as_routed() == 2


async def test_banned_refusal_without_notification_cools_the_account(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        h.faulty.faults = [refusal("mj_bot_banned: account banned")]
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 200, answer.text
        received = await h.received()
        assert len(received) == 1
        cooled = [
            a for a in await h.gate.catalog.list_accounts() if a.state is AccountState.COOLING
        ]
        assert len(cooled) == 1 and cooled[0].bot_id != received[0]["bot_id"]
        assert cooled[0].in_flight == 0
        assert await h.assert_ran_as_routed() == 1


async def test_upstream_refusal_of_the_request_is_passed_on_as_4xx_and_released(
    redis: Redis, prefix: str
) -> None:
    """GoAPI's 500 for a prompt format problem is the client's error: 400, never a 5xx."""
    async with harness(redis, prefix) as h:
        faulty = h.faulty
        faulty.faults = [refusal("Invalid Param Format: there should be space before --", 500)]
        answer = await h.create(prompt="x--fast")
        assert answer.status_code == 400 and error_type(answer) == "upstream_rejected"
        assert answer.json()["error"]["upstream_status"] == 500
        assert answer.json()["message"].startswith("Invalid Param Format")
        assert faulty.creates == 1
        for spec in DEMO:
            assert await in_flight(h, spec.bot_id) == 0


FIVE = (
    AccountSpec(bot_id=1, name="a", plan=Plan.PRO),
    AccountSpec(bot_id=2, name="b", plan=Plan.PRO),
    AccountSpec(bot_id=3, name="c", plan=Plan.PRO),
    AccountSpec(bot_id=4, name="d", plan=Plan.PRO, fast_seconds_left=10_000),
)


async def test_a_create_tries_accounts_until_one_accepts(redis: Redis, prefix: str) -> None:
    """Three accounts refuse for their own reasons; the fourth, never tried before, takes
    the task. No account-level refusal reaches the client."""
    async with harness(redis, prefix, accounts=FIVE, notifications=False) as h:
        h.faulty.faults = [
            refusal("mj_bot_subscription_expired: subscription expired"),
            refusal("mj_bot_banned: account banned"),
            refusal("input.bot_id: no account with bot_id 3"),
        ]
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 200, answer.text
        assert h.faulty.creates == 4
        states = {a.bot_id: a for a in await h.gate.catalog.list_accounts()}
        taken = int(answer.headers["x-mjgate-bot-id"])
        refused = [bot_id for bot_id in states if bot_id != taken]
        assert len(refused) == 3 and all(states[b].in_flight == 0 for b in refused)
        assert {states[b].state for b in refused} == {AccountState.DISABLED, AccountState.COOLING}
        unknown = [a for a in states.values() if a.state_reason == "unknown_to_upstream"]
        assert len(unknown) == 1  # out of rotation, with the reason visible
        events = {"event": "unknown_to_upstream"}  # and counted
        assert h.registry.get_sample_value("mjgate_account_events_total", events) == 1


async def test_when_every_account_refuses_the_client_hears_it_was_the_accounts(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=FIVE, notifications=False) as h:
        h.faulty.faults = [refusal("mj_bot_banned: account banned")] * 4
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 503 and error_type(answer) == "no_account_accepted"
        assert "banned" not in answer.json()["message"]
        assert answer.headers["retry-after"]


async def test_a_2xx_without_a_task_is_ambiguous_and_keeps_the_reservation(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix) as h:
        h.faulty.faults = [
            httpx.Response(200, content=b"<html>gateway</html>"),
            httpx.Response(200, json={"code": 200, "data": None, "message": "success"}),
        ]
        for _ in range(2):
            answer = await h.create(prompt="x --fast")
            assert answer.status_code == 502 and error_type(answer) == "upstream_invalid_answer"
        assert sum([await in_flight(h, s.bot_id) for s in DEMO]) == 2  # kept: it may run
        assert h.faulty.creates == 2  # never re-sent


async def test_a_429_backs_off_without_blaming_any_account(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix) as h:
        h.faulty.faults = [
            httpx.Response(
                429, json={"code": 429, "message": "too many"}, headers={"retry-after": "7"}
            )
        ] * 3
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 429 and error_type(answer) == "upstream_rate_limited"
        assert answer.headers["retry-after"] == "7"
        assert h.faulty.creates == 1
        again = await h.create(prompt="y --fast")  # refused before anything is reserved
        assert again.status_code == 429 and error_type(again) == "upstream_rate_limited"
        assert h.faulty.creates == 1
        accounts = await h.gate.catalog.list_accounts()
        assert all(a.state is AccountState.ACTIVE and a.in_flight == 0 for a in accounts)
