"""The routing rules (docs/routing.md, 'Decisions'), rule by rule, end to end: the
emulator's record of what it received
(`bot_id`, `process_mode`) and the routing headers are the evidence, and every test ends with
`assert_ran_as_routed`: the emulator ran each task on the account and in the mode mjgate
decided."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from routing.accounts import AccountSpec
from routing.model import AccountState, Plan, Setting, Strategy
from tests.harness import CLIENT_KEY, Harness, harness

pytestmark = pytest.mark.topologies  # standalone, Sentinel, Cluster

SLOW = EmulatorConfig(pending_seconds=60, processing_seconds=60)


def routed(answer: httpx.Response) -> tuple[int | None, str, str]:
    assert answer.status_code == 200, answer.text
    bot = answer.headers.get("x-mjgate-bot-id")
    return (
        int(bot) if bot else None,
        answer.headers.get("x-mjgate-mode", ""),
        answer.headers["x-mjgate-decision"],
    )


async def last_received(h: Harness) -> dict[str, Any]:
    return (await h.received())[-1]


async def test_fast_goes_to_a_fast_account_with_time_and_a_free_slot(
    redis: Redis, prefix: str
) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.PRO, fast_seconds_left=0),
        AccountSpec(bot_id=2, plan=Plan.PRO, setting=Setting.RELAX),
        AccountSpec(bot_id=3, plan=Plan.STANDARD),
    )
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        assert routed(await h.create(prompt="x --fast")) == (3, "fast", "routed")
        seen = await last_received(h)
        assert (seen["bot_id"], seen["process_mode"]) == (3, "fast")
        await h.assert_ran_as_routed()


async def test_turbo_reserves_twice_the_fast_time(redis: Redis, prefix: str) -> None:
    async with harness(
        redis, prefix, accounts=(AccountSpec(bot_id=1, plan=Plan.PRO),), emulator_config=SLOW
    ) as h:
        assert routed(await h.create(prompt="x", process_mode="turbo")) == (1, "turbo", "routed")
        account = await h.gate.catalog.get_account(1)
        assert account.fast_seconds_reserved == 120
        assert (await last_received(h))["process_mode"] == "turbo"
        await h.assert_ran_as_routed()


async def test_fallback_to_relax_only_when_no_account_has_fast_time(
    redis: Redis, prefix: str
) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.PRO, fast_seconds_left=30),
        AccountSpec(bot_id=2, plan=Plan.BASIC, fast_seconds_left=0),
    )
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        # 30 s left is less than an imagine's 60: no account has fast time for it
        bot, mode, decision = routed(await h.create(prompt="x --fast"))
        assert (bot, mode, decision) == (1, "relax", "fallback_relax:no_fast_hours")
        seen = await last_received(h)
        assert (seen["bot_id"], seen["process_mode"]) == (1, "relax")
        # a describe (10 s) still fits in the 30 s left: fast
        describe = await h.create(
            "describe", image_url="http://127.0.0.1:9/a.png", process_mode="fast"
        )
        assert routed(describe) == (1, "fast", "routed")
        await h.assert_ran_as_routed()


async def test_busy_fast_accounts_stage_instead_of_falling_back(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO, fast_slots=1, relax_slots=3),)
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        assert routed(await h.create(prompt="x --fast"))[2] == "routed"
        staged = await h.create(prompt="y --fast")
        assert routed(staged) == (None, "", "staged")
        assert staged.json()["data"]["status"] == "staged"
        assert len(await h.received()) == 1
        fetched = (await h.get(staged.json()["data"]["task_id"])).json()["data"]
        assert fetched["status"] == "staged"
        await h.assert_ran_as_routed()


async def test_staged_task_runs_when_a_slot_frees(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO, fast_slots=1),)
    config = EmulatorConfig(pending_seconds=0.05, processing_seconds=0.1)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        first = (await h.create(prompt="a --fast")).json()["data"]
        second = (await h.create(prompt="b --fast")).json()["data"]
        assert second["status"] == "staged"
        await h.wait_status(first["task_id"], "completed")
        done = await h.wait_status(second["task_id"], "completed")
        assert done["task_id"] == second["task_id"]
        assert [r["prompt"] for r in await h.received()] == ["a --fast", "b --fast"]
        await h.assert_ran_as_routed()


async def test_a_freed_slot_goes_to_the_staged_task_not_a_newcomer(
    redis: Redis, prefix: str
) -> None:
    """Staged tasks run first-in-first-out (docs/routing.md, 'Staging'). The cancel's settle
    hands the slot to the staged task in the same script, so a create right after it is staged
    too."""
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO, fast_slots=1),)
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        first = (await h.create(prompt="a --fast")).json()["data"]
        second = (await h.create(prompt="b --fast")).json()["data"]
        assert second["status"] == "staged"
        cancelled = await h.client.delete(
            f"/api/v1/task/{first['task_id']}", headers={"x-api-key": CLIENT_KEY}
        )
        assert cancelled.status_code == 200
        newcomer = await h.create(prompt="c --fast")
        assert routed(newcomer) == (None, "", "staged")
        await h.wait_status(second["task_id"], "pending")
        assert [r["prompt"] for r in await h.received()] == ["a --fast", "b --fast"]
        await h.assert_ran_as_routed()


async def test_relax_never_goes_to_a_basic_account(redis: Redis, prefix: str) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.BASIC),
        AccountSpec(bot_id=2, plan=Plan.STANDARD, relax_slots=1),
    )
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        assert routed(await h.create(prompt="x --relax")) == (2, "relax", "routed")
        # the standard account's relax slot is busy: stage, never the basic account
        assert routed(await h.create(prompt="y --relax"))[2] == "staged"
        assert {r["bot_id"] for r in await h.received()} == {2}
        await h.assert_ran_as_routed()


async def test_relax_setting_account_never_takes_fast_work(redis: Redis, prefix: str) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.MEGA, setting=Setting.RELAX),
        AccountSpec(bot_id=2, plan=Plan.STANDARD, fast_slots=1),
    )
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        assert routed(await h.create(prompt="x --fast"))[0] == 2
        assert routed(await h.create(prompt="y --fast"))[2] == "staged"
        # but it takes relax work, sent as relax
        assert routed(await h.create(prompt="z"))[:2] in ((1, "relax"), (2, "relax"))
        await h.assert_ran_as_routed()


async def test_account_reaching_zero_fast_time_switches_to_relax(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO, fast_seconds_left=60),)
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        task = (await h.create(prompt="x --fast")).json()["data"]
        await h.wait_status(task["task_id"], "completed")
        account = await h.gate.catalog.get_account(1)
        assert account.fast_seconds_left == 0 and account.setting is Setting.RELAX
        bot, mode, decision = routed(await h.create(prompt="y --fast"))
        assert (bot, mode, decision) == (1, "relax", "fallback_relax:no_fast_hours")
        await h.assert_ran_as_routed()


async def test_children_stay_on_the_parent_account_and_inherit(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO), AccountSpec(bot_id=2, plan=Plan.PRO))
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        parent = await h.create(prompt="x --turbo")
        bot = routed(parent)[0]
        parent_id = parent.json()["data"]["task_id"]
        await h.wait_status(parent_id, "completed")
        for task_type, extra in [
            ("upscale", {"index": "1"}),
            ("variation", {"index": "2"}),
            ("reroll", {}),
        ]:
            child = await h.create(task_type, origin_task_id=parent_id, **extra)
            assert routed(child) == (bot, "turbo", "inherited")
            seen = await last_received(h)
            assert seen["bot_id"] == bot and seen["process_mode"] in ("", None, "turbo")
        await h.assert_ran_as_routed()


@pytest.mark.parametrize(
    ("change", "decision"),
    [
        ("setting", "inherited_relax:setting_relax"),
        ("fast_time", "inherited_relax:no_fast_time"),
    ],
)
async def test_child_runs_relax_when_the_parent_account_cannot_do_fast(
    redis: Redis, prefix: str, change: str, decision: str
) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO),)
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        parent = (await h.create(prompt="x --fast")).json()["data"]
        await h.wait_status(parent["task_id"], "completed")
        if change == "setting":
            await h.gate.catalog.apply_account(
                AccountSpec(bot_id=1, plan=Plan.PRO, setting=Setting.RELAX)
            )
        else:
            await h.gate.store.set_fast_time(1, 30, reason="test")  # < a variation's 60 s
        child = await h.create("variation", origin_task_id=parent["task_id"], index="1")
        assert routed(child) == (1, "relax", decision)
        assert (await last_received(h))["process_mode"] == "relax"
        await h.assert_ran_as_routed()


async def test_child_of_busy_parent_stages_and_of_disabled_parent_is_409(
    redis: Redis, prefix: str
) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.PRO, fast_slots=1),
        AccountSpec(bot_id=2, plan=Plan.PRO),
    )
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        await h.gate.store.set_state(2, AccountState.PAUSED, reason="test")
        parent = (await h.create(prompt="x --fast")).json()["data"]
        await h.wait_status(parent["task_id"], "completed")
        await h.emulator.patch(
            "/_emulator/config", json={"pending_seconds": 60, "processing_seconds": 60}
        )
        assert routed(await h.create(prompt="busy --fast"))[0] == 1
        child = await h.create("upscale", origin_task_id=parent["task_id"], index="1")
        assert routed(child)[2] == "staged"
        await h.gate.store.set_state(1, AccountState.DISABLED, reason="test")
        refused = await h.create("upscale", origin_task_id=parent["task_id"], index="2")
        assert refused.status_code == 409
        assert refused.json()["error"]["type"] == "parent_account_unavailable"
        # the staged child can never run now: the next dispatch fails it, no timeout wait
        await h.gate.tasks.loops.dispatch()
        failed = await h.wait_status(child.json()["data"]["task_id"], "failed")
        assert failed["error"]["message"].startswith("account 1 can't take child tasks")
        assert await h.gate.store.staged_count() == 0
        assert [r["task_type"] for r in await h.received()] == ["imagine", "imagine"]
        await h.assert_ran_as_routed()


async def test_draining_account_takes_children_but_no_new_roots(redis: Redis, prefix: str) -> None:
    accounts = (AccountSpec(bot_id=1, plan=Plan.PRO), AccountSpec(bot_id=2, plan=Plan.PRO))
    config = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)
    async with harness(redis, prefix, accounts=accounts, emulator_config=config) as h:
        parent = await h.create(prompt="x --fast")
        bot = routed(parent)[0]
        assert bot is not None
        await h.wait_status(parent.json()["data"]["task_id"], "completed")
        await h.gate.store.set_state(bot, AccountState.DRAINING, reason="retiring")
        child = await h.create(
            "upscale", origin_task_id=parent.json()["data"]["task_id"], index="1"
        )
        assert routed(child)[0] == bot
        for _ in range(3):
            assert routed(await h.create(prompt="y --fast"))[0] != bot
        await h.assert_ran_as_routed()


@pytest.mark.parametrize(
    ("strategy", "expected"), [(Strategy.LEAST_BUSY, 2), (Strategy.MOST_FAST_LEFT, 1)]
)
async def test_strategies(redis: Redis, prefix: str, strategy: Strategy, expected: int) -> None:
    accounts = (
        AccountSpec(bot_id=1, plan=Plan.MEGA, fast_slots=4),
        AccountSpec(bot_id=2, plan=Plan.STANDARD, fast_slots=4),
    )
    async with harness(redis, prefix, accounts=accounts, emulator_config=SLOW) as h:
        await h.gate.catalog.set_strategy(strategy)
        first = routed(await h.create(prompt="a --fast"))[0]
        assert first == 1  # both idle: least_busy breaks the tie by most fast time left
        assert routed(await h.create(prompt="b --fast"))[0] == expected
        await h.assert_ran_as_routed()


@pytest.mark.parametrize(
    ("process_mode", "prompt", "mode"),
    [
        (None, "a cat", "relax"),
        ("", "a cat --fast", "fast"),
        ("mixed", "a cat --turbo", "turbo"),
        ("relax", "a cat --fast", "relax"),
        ("fast", "a cat --relax", "fast"),
        ("turbo", "a cat", "turbo"),
        (None, "a cat --fastest", "relax"),
        (None, "a cat --fast --relax", "relax"),
    ],
)
async def test_mode_precedence_end_to_end(
    redis: Redis, prefix: str, process_mode: str | None, prompt: str, mode: str
) -> None:
    async with harness(
        redis, prefix, accounts=(AccountSpec(bot_id=5, plan=Plan.PRO),), emulator_config=SLOW
    ) as h:
        extra = {} if process_mode is None else {"process_mode": process_mode}
        assert routed(await h.create(prompt=prompt, **extra))[:2] == (5, mode)
        seen = await last_received(h)
        assert seen["process_mode"] == mode and seen["prompt"] == prompt
        await h.assert_ran_as_routed()
