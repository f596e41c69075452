"""An account that ran out of fast time upstream before mjgate knew: GoAPI runs the fast task
relax (`meta.process_mode`: the mode actually used) and switches the account to relax. mjgate
moves the reservation to a relax slot, gives its fast time back, sets the account to relax
with no fast time left, and records the task as relax, so no more fast work goes there and
the account's relax slots count it."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from emulator.config import EmulatorConfig
from routing.accounts import AccountSpec
from routing.model import Plan, Setting
from tests.harness import harness

PRO = (AccountSpec(bot_id=7, name="pro", plan=Plan.PRO),)
SLOW = EmulatorConfig(pending_seconds=0.3, processing_seconds=0.3)


async def test_a_fast_task_the_upstream_ran_relax_is_booked_relax(
    redis: Redis, prefix: str
) -> None:
    async with harness(redis, prefix, accounts=PRO, emulator_config=SLOW) as h:
        patched = await h.emulator.patch("/_emulator/accounts/7", json={"fast_seconds": 30})
        assert patched.status_code == 200, patched.text  # mjgate still counts the plan's hours
        answer = await h.create(prompt="x --fast")
        assert answer.status_code == 200, answer.text
        task_id = answer.json()["data"]["task_id"]
        (received,) = await h.received()
        assert received["effective_mode"] == "relax"  # the upstream's own switch
        record = await h.gate.records.load(task_id)
        assert record.mode == "relax"
        account = await h.gate.catalog.get_account(7)
        assert account is not None
        assert (account.setting, account.fast_seconds_left) == (Setting.RELAX, 0)
        assert (account.fast_in_flight, account.relax_in_flight) == (0, 1)
        assert account.fast_seconds_reserved == 0
        another = await h.create(prompt="y --fast")  # relax now: nothing has fast time
        assert another.headers["x-mjgate-mode"] == "relax", another.text
        for _ in range(100):
            account = await h.gate.catalog.get_account(7)
            if account is not None and account.relax_in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert account is not None and (account.fast_in_flight, account.relax_in_flight) == (0, 0)
        finished = await h.get(task_id)
        assert finished.json()["data"]["status"] == "completed"
