"""Slots: tasks beyond them queue as pending; in-flight, submitted and their peaks."""

from __future__ import annotations

from emulator.config import EmulatedAccountSpec
from tests.emulator.conftest import KEY, MakeHarness


async def test_tasks_beyond_the_slots_queue_until_a_slot_frees(make_harness: MakeHarness) -> None:
    harness = await make_harness(
        accounts=(EmulatedAccountSpec(1, "standard", fast_slots=2),),
        pending_seconds=1,
        processing_seconds=2,
    )
    ids = [
        (await harness.create("imagine", prompt=f"p{n} --fast", bot_id=1))["task_id"]
        for n in range(5)
    ]
    account = await harness.account(1)
    assert account["in_flight"]["fast"] == 2
    assert account["submitted"]["fast"] == 5
    assert account["queued"]["fast"] == 3
    harness.tick(1.5)
    statuses = [(await harness.get(i))["status"] for i in ids]
    assert statuses == ["processing", "processing", "pending", "pending", "pending"]
    harness.tick(2)  # the first two end; two queued tasks take their slots
    statuses = [(await harness.get(i))["status"] for i in ids]
    assert statuses[:2] == ["completed", "completed"]
    assert statuses[2:4] == ["pending", "pending"] and statuses[4] == "pending"
    for task_id in ids:
        await harness.finish(task_id)
    account = await harness.account(1)
    assert account["in_flight"] == {"fast": 0, "relax": 0}
    assert account["submitted"] == {"fast": 0, "relax": 0}
    assert account["peak_in_flight"]["fast"] == 2
    assert account["peak_submitted"]["fast"] == 5
    assert account["completed"] == 5


async def test_fast_and_turbo_share_fast_slots_relax_has_its_own(
    make_harness: MakeHarness,
) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "standard"),))  # 3 / 3
    for mode in ("fast", "turbo", "fast", "relax", "relax"):
        await harness.create("imagine", prompt="p", process_mode=mode, bot_id=1)
    account = await harness.account(1)
    assert account["in_flight"] == {"fast": 3, "relax": 2}
    assert account["slots"] == {"fast": 3, "relax": 3}


async def test_cancel_frees_a_slot_for_the_queue(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "standard", fast_slots=1),))
    first = await harness.create("imagine", prompt="p --fast", bot_id=1)
    second = await harness.create("imagine", prompt="p --fast", bot_id=1)
    third = await harness.create("imagine", prompt="p --fast", bot_id=1)
    # Cancelling a queued task frees nothing; cancelling the slot holder admits the next.
    await harness.client.delete(f"/api/v1/task/{third['task_id']}", headers=KEY)
    assert (await harness.account(1))["queued"]["fast"] == 1
    await harness.client.delete(f"/api/v1/task/{first['task_id']}", headers=KEY)
    account = await harness.account(1)
    assert account["in_flight"]["fast"] == 1 and account["queued"]["fast"] == 0
    assert (await harness.finish(second["task_id"]))["status"] == "completed"


async def test_any_account_prefers_a_free_slot(make_harness: MakeHarness) -> None:
    accounts = (
        EmulatedAccountSpec(1, "standard", fast_slots=1),
        EmulatedAccountSpec(2, "standard", fast_slots=1),
    )
    harness = await make_harness(accounts=accounts)
    for _ in range(2):
        await harness.create("imagine", prompt="p --fast")
    assert (await harness.account(1))["in_flight"]["fast"] == 1
    assert (await harness.account(2))["in_flight"]["fast"] == 1


async def test_raising_slots_admits_queued_tasks(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", fast_slots=1),))
    for _ in range(3):
        await harness.create("imagine", prompt="p --fast", bot_id=1)
    response = await harness.client.patch("/_emulator/accounts/1", json={"fast_slots": 3})
    assert response.status_code == 200
    assert response.json()["in_flight"]["fast"] == 3
    assert response.json()["queued"]["fast"] == 0


async def test_reset_clears_tasks_and_peaks_but_keeps_accounts(make_harness: MakeHarness) -> None:
    harness = await make_harness(accounts=(EmulatedAccountSpec(1, "pro", fast_seconds=500),))
    task = await harness.completed("imagine", prompt="p --fast", bot_id=1)
    await harness.create("imagine", prompt="p --fast", bot_id=1)
    await harness.client.post("/_emulator/faults", json={"status": 500})
    assert (await harness.client.post("/_emulator/reset")).status_code == 200
    account = await harness.account(1)
    assert account["fast_seconds"] == 440  # kept
    assert account["peak_submitted"] == {"fast": 0, "relax": 0}
    assert account["in_flight"] == {"fast": 0, "relax": 0}
    assert (await harness.client.get("/_emulator/received")).json()["received"] == []
    assert (await harness.client.get("/_emulator/faults")).json()["faults"]["status"] == []
    gone = await harness.client.get(f"/api/v1/task/{task['task_id']}", headers=KEY)
    assert gone.status_code == 404
