"""Modes on HYA accounts: relax fallbacks, basic without relax, fast time charged on completion."""

from __future__ import annotations

import pytest

from emulator.config import EmulatedAccountSpec
from tests.emulator.conftest import KEY, Harness, MakeHarness


async def test_fast_without_fast_time_runs_relax(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "standard", fast_seconds=30),))
    task = await harness.create("imagine", prompt="p", process_mode="fast", bot_id=1)
    assert task["meta"]["process_mode"] == "relax"
    assert task["meta"]["is_using_private_pool"] is True
    assert task["input"]["process_mode"] == "fast"  # the input is echoed as sent


async def test_setting_relax_runs_everything_relax(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", setting="relax"),))
    task = await harness.create("imagine", prompt="p --turbo", bot_id=1)
    assert task["meta"]["process_mode"] == "relax"
    assert (await harness.account(1))["submitted"] == {"fast": 0, "relax": 1}


async def test_relax_on_basic_is_400(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "basic"),))
    response = await harness.post("imagine", prompt="p", process_mode="relax", bot_id=1)
    assert response.status_code == 400
    assert "input.process_mode" in response.json()["message"]
    # No process_mode and no flag means relax, refused too.
    assert (await harness.post("imagine", prompt="p", bot_id=1)).status_code == 400


async def test_basic_without_fast_time_refuses_with_the_notification_prefix(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "basic", fast_seconds=0),))
    response = await harness.post("imagine", prompt="p", process_mode="fast", bot_id=1)
    assert response.status_code == 400
    assert response.json()["message"].startswith("mj_bot_no_fasthour: ")


async def test_any_account_relax_skips_basic_and_fast_falls_back(
    make_harness: MakeHarness,
) -> None:
    accounts = (
        EmulatedAccountSpec(1, "basic", fast_seconds=0),
        EmulatedAccountSpec(2, "standard", fast_seconds=0),
    )
    harness = await make_harness(accounts=accounts)
    for mode in ("relax", "fast"):
        await harness.create("imagine", prompt="p", process_mode=mode)
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert [(r["effective_bot_id"], r["effective_mode"]) for r in received] == [
        (2, "relax"),
        (2, "relax"),
    ]


async def test_no_relax_capable_account(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "basic"),))
    response = await harness.post("imagine", prompt="p --relax")
    assert response.status_code == 400
    assert response.json()["message"].startswith("no_active_mj_bot: ")
    assert (await harness.post("imagine", prompt="p --fast")).status_code == 200


async def test_unknown_bot_id_is_400(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1),))
    response = await harness.post("imagine", prompt="p", bot_id=9)
    assert response.status_code == 400 and "input.bot_id" in response.json()["message"]


@pytest.mark.parametrize(("mode", "charged"), [("fast", 60.0), ("turbo", 120.0), ("relax", 0.0)])
async def test_fast_time_is_charged_on_completion_only(
    make_harness: MakeHarness, mode: str, charged: float
) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", fast_seconds=1000),))
    task = await harness.create("imagine", prompt="p", process_mode=mode, bot_id=1)
    harness.tick(5)  # processing, not finished
    assert (await harness.get(task["task_id"]))["status"] == "processing"
    assert (await harness.account(1))["fast_seconds"] == 1000
    await harness.finish(task["task_id"])
    account = await harness.account(1)
    assert account["fast_seconds"] == 1000 - charged
    assert account["fast_seconds_used"] == charged


async def test_cancel_and_failure_charge_nothing(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", fast_seconds=1000),))
    task = await harness.create("imagine", prompt="p --fast", bot_id=1)
    await harness.client.delete(f"/api/v1/task/{task['task_id']}", headers=KEY)
    await harness.client.post(
        "/_emulator/faults", json={"fail_tasks": 1, "message": "Banned prompt"}
    )
    failed = await harness.finish((await harness.create("imagine", prompt="q --fast"))["task_id"])
    assert failed["status"] == "failed"
    account = await harness.account(1)
    assert account["fast_seconds"] == 1000
    assert account["in_flight"] == {"fast": 0, "relax": 0}


async def test_children_inherit_mode_and_honour_relax(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro"),))
    grid = await harness.completed("imagine", prompt="p", process_mode="turbo")
    parent = grid["task_id"]
    inherited = await harness.create("variation", origin_task_id=parent, index="1")
    assert inherited["meta"]["process_mode"] == "turbo"
    fast_means_parent = await harness.create(
        "variation", origin_task_id=parent, index="2", process_mode="fast"
    )
    assert fast_means_parent["meta"]["process_mode"] == "turbo"
    relax = await harness.create("reroll", origin_task_id=parent, process_mode="relax")
    assert relax["meta"]["process_mode"] == "relax"


async def test_child_of_an_account_out_of_fast_time_runs_relax(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "standard", fast_seconds=60),))
    grid = await harness.completed("imagine", prompt="p --fast", bot_id=1)
    assert grid["meta"]["process_mode"] == "fast"
    account = await harness.account(1)
    assert account["fast_seconds"] == 0 and account["setting"] == "relax"
    child = await harness.create("variation", origin_task_id=grid["task_id"], index="1")
    assert child["meta"]["process_mode"] == "relax"


@pytest.mark.parametrize(
    ("parent_mode", "child_input", "ran"),
    [
        ("fast", {"process_mode": "relax"}, "relax"),  # a downgrade is honoured
        ("turbo", {"process_mode": " RELAX "}, "relax"),
        ("fast", {"process_mode": "turbo"}, "fast"),  # anything else: the parent's mode
        ("turbo", {"process_mode": "fast"}, "turbo"),
        ("relax", {"process_mode": "fast"}, "relax"),  # never an upgrade
        ("relax", {"process_mode": "turbo"}, "relax"),
        ("fast", {"process_mode": "mixed"}, "fast"),
        ("fast", {"process_mode": ""}, "fast"),
        ("fast", {}, "fast"),
        ("fast", {"prompt": "more --relax"}, "fast"),  # a child's prompt flag is no request
        ("relax", {"prompt": "more --turbo"}, "relax"),
    ],
)
async def test_child_process_mode_relax_is_honoured_and_others_ignored(
    make_harness: MakeHarness, parent_mode: str, child_input: dict[str, str], ran: str
) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", fast_seconds=1000),))
    grid = await harness.completed("imagine", prompt="p", process_mode=parent_mode, bot_id=1)
    before = (await harness.account(1))["fast_seconds"]
    child = await harness.create(
        "variation", origin_task_id=grid["task_id"], index="1", **child_input
    )
    assert child["meta"]["process_mode"] == ran
    account = await harness.account(1)
    assert account["submitted"] == {"fast": int(ran != "relax"), "relax": int(ran == "relax")}
    await harness.finish(child["task_id"])
    charged = {"relax": 0, "fast": 60, "turbo": 120}[ran]  # a grid: one fast GPU-minute
    assert (await harness.account(1))["fast_seconds"] == before - charged
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert (received[-1]["effective_bot_id"], received[-1]["effective_mode"]) == (1, ran)


async def test_child_relax_on_a_basic_account_is_refused(make_harness: MakeHarness) -> None:
    """A basic plan has no relax: GoAPI refuses relax work there, a child's too."""
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "basic"),))
    grid = await harness.completed("imagine", prompt="p --fast", bot_id=1)
    refused = await harness.post(
        "upscale", origin_task_id=grid["task_id"], index="1", process_mode="relax"
    )
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("input.process_mode: relax is not available")
    assert (await harness.account(1))["submitted"] == {"fast": 0, "relax": 0}
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert (received[-1]["task_id"], received[-1]["status"]) == (None, 400)
    # without the request it inherits fast, as usual
    inherited = await harness.create("upscale", origin_task_id=grid["task_id"], index="1")
    assert inherited["meta"]["process_mode"] == "fast"


async def test_child_relax_in_the_public_pool(harness: Harness) -> None:
    grid = await harness.completed("imagine", prompt="p --turbo")
    child = await harness.create("reroll", origin_task_id=grid["task_id"], process_mode="relax")
    assert child["meta"]["process_mode"] == "relax"
    assert child["meta"]["is_using_private_pool"] is False
    bad = await harness.post("reroll", origin_task_id=grid["task_id"], process_mode="slow")
    assert bad.status_code == 400 and "input.process_mode" in bad.json()["message"]
