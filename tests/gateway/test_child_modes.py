"""Children and `process_mode`, end to end: an explicit relax on a child is honoured (it runs
relax on the parent's account, costs no fast time, and is sent upstream as relax); any other
explicit mode is ignored and the child inherits the parent's mode."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.harness import Harness, harness

ACCOUNTS = (AccountSpec(bot_id=1, plan=Plan.PRO), AccountSpec(bot_id=2, plan=Plan.PRO))
QUICK = EmulatorConfig(pending_seconds=0.02, processing_seconds=0.05)


def routed(answer: httpx.Response) -> tuple[int | None, str, str]:
    assert answer.status_code == 200, answer.text
    bot = answer.headers.get("x-mjgate-bot-id")
    return (
        int(bot) if bot else None,
        answer.headers.get("x-mjgate-mode", ""),
        answer.headers["x-mjgate-decision"],
    )


async def completed_parent(h: Harness, prompt: str) -> tuple[int, str]:
    parent = await h.create(prompt=prompt)
    bot = routed(parent)[0]
    assert bot is not None
    task_id: str = parent.json()["data"]["task_id"]
    await h.wait_status(task_id, "completed")
    return bot, task_id


async def test_other_explicit_modes_on_a_child_are_ignored(redis: Redis, prefix: str) -> None:
    async with harness(redis, prefix, accounts=ACCOUNTS, emulator_config=QUICK) as h:
        bot, parent = await completed_parent(h, "x --fast")
        for mode in ("turbo", "fast", "mixed"):
            child = await h.create("variation", origin_task_id=parent, index="1", process_mode=mode)
            assert routed(child) == (bot, "fast", "inherited")
        await h.assert_ran_as_routed(at_least=4)


async def test_an_explicit_relax_on_a_child_runs_relax_on_the_parent_account(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=ACCOUNTS, emulator_config=QUICK) as h:
        bot, parent = await completed_parent(h, "x --fast")
        before = (await h.gate.catalog.get_account(bot)).fast_seconds_left
        child = await h.create("variation", origin_task_id=parent, index="1", process_mode="relax")
        assert routed(child) == (bot, "relax", "inherited_relax:requested")
        sent = (await h.received())[-1]
        assert (sent["bot_id"], sent["process_mode"]) == (bot, "relax")
        done = await h.wait_status(child.json()["data"]["task_id"], "completed")
        assert done["meta"]["process_mode"] == "relax"
        account = await h.gate.catalog.get_account(bot)
        assert account.fast_seconds_left == before and account.fast_seconds_reserved == 0
        await h.assert_ran_as_routed(at_least=2)
