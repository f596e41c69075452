"""Each task type's output, child validation against the parent, and the image route."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from emulator.config import EmulatedAccountSpec
from emulator.outputs import GRID_ACTIONS, UPSCALE_ACTIONS
from tests.emulator.conftest import Harness, MakeHarness

BASE = "http://127.0.0.1:8090/_emulator/images/"


def assert_grid(output: dict[str, Any], task_id: str) -> None:
    assert output["image_url"] == f"{BASE}{task_id}/0.png"
    assert output["temporary_image_urls"] == [f"{BASE}{task_id}/{n}.png" for n in range(1, 5)]
    assert output["actions"] == list(GRID_ACTIONS)
    assert output["progress"] == 100


async def test_grid_outputs(harness: Harness) -> None:
    imagine = await harness.completed("imagine", prompt="p")
    assert list(imagine["output"]) == [
        "image_url",
        "image_urls",
        "temporary_image_urls",
        "discord_image_url",
        "actions",
        "progress",
        "intermediate_image_urls",
    ]
    assert_grid(imagine["output"], imagine["task_id"])
    blend = await harness.completed(
        "blend", image_urls=["http://127.0.0.1/a", "http://127.0.0.1/b"]
    )
    assert_grid(blend["output"], blend["task_id"])
    parent = imagine["task_id"]
    for index in ("1", "2", "3", "4"):
        variation = await harness.completed("variation", origin_task_id=parent, index=index)
        assert_grid(variation["output"], variation["task_id"])
    reroll = await harness.completed("reroll", origin_task_id=parent)
    assert_grid(reroll["output"], reroll["task_id"])


async def test_upscale_outputs_and_upscale_children(harness: Harness) -> None:
    grid = await harness.completed("imagine", prompt="p")
    for index in ("1", "2", "3", "4"):
        upscale = await harness.completed("upscale", origin_task_id=grid["task_id"], index=index)
        output = upscale["output"]
        assert output["image_url"] == f"{BASE}{upscale['task_id']}/0.png"
        assert output["actions"] == list(UPSCALE_ACTIONS)
        assert output["progress"] == 100
    parent = upscale["task_id"]
    children: list[tuple[str, dict[str, Any]]] = [
        ("variation", {"index": "high_variation"}),
        ("variation", {"index": "low_variation"}),
        ("outpaint", {"zoom_ratio": "1.5"}),
        ("pan", {"direction": "left"}),
        ("inpaint", {"mask": "aGVsbG8=", "prompt": "a hat"}),
        ("upscale", {"index": "subtle"}),
        ("upscale", {"index": "creative"}),
    ]
    for task_type, fields in children:
        child = await harness.completed(task_type, origin_task_id=parent, **fields)
        assert child["output"]["image_url"].startswith(BASE)


async def test_describe_and_seed(harness: Harness) -> None:
    describe = await harness.completed("describe", image_url="http://127.0.0.1/cat.png")
    lines = [line for line in describe["output"]["description"].split("\n") if line]
    assert len(lines) == 4
    grid = await harness.completed("imagine", prompt="p")
    seed = await harness.completed("seed", origin_task_id=grid["task_id"])
    assert isinstance(seed["output"]["seed"], int)
    seed_of_describe = await harness.completed("seed", origin_task_id=describe["task_id"])
    assert isinstance(seed_of_describe["output"]["seed"], int)


@pytest.mark.parametrize(
    ("task_type", "fields"),
    [
        ("upscale", {"index": "1"}),
        ("variation", {"index": "2"}),
        ("reroll", {}),
        ("upscale", {"index": "light"}),
    ],
)
async def test_grid_children_refuse_an_upscale_parent(
    harness: Harness, task_type: str, fields: dict[str, Any]
) -> None:
    grid = await harness.completed("imagine", prompt="p")
    upscale = await harness.completed("upscale", origin_task_id=grid["task_id"], index="1")
    response = await harness.post(task_type, origin_task_id=upscale["task_id"], **fields)
    assert response.status_code == 400
    assert "input.origin_task_id" in response.json()["message"]


@pytest.mark.parametrize(
    ("task_type", "fields"),
    [
        ("variation", {"index": "high_variation"}),
        ("outpaint", {"zoom_ratio": "2"}),
        ("pan", {"direction": "up"}),
        ("inpaint", {"mask": "bWFzaw=="}),
        ("upscale", {"index": "4x"}),
    ],
)
async def test_upscale_children_refuse_a_grid_parent(
    harness: Harness, task_type: str, fields: dict[str, Any]
) -> None:
    grid = await harness.completed("imagine", prompt="p")
    response = await harness.post(task_type, origin_task_id=grid["task_id"], **fields)
    assert response.status_code == 400
    assert "needs a parent whose output is upscale" in response.json()["message"]


async def test_children_need_a_known_completed_parent(harness: Harness) -> None:
    missing = await harness.post("upscale", origin_task_id="nope", index="1")
    assert missing.status_code == 400 and "not found" in missing.json()["message"]
    pending = await harness.create("imagine", prompt="p")
    response = await harness.post("upscale", origin_task_id=pending["task_id"], index="1")
    assert response.status_code == 400 and "pending" in response.json()["message"]
    await harness.client.delete(f"/api/v1/task/{pending['task_id']}", headers={"x-api-key": "k"})
    failed = await harness.post("upscale", origin_task_id=pending["task_id"], index="1")
    assert failed.status_code == 400 and "failed" in failed.json()["message"]


async def test_child_runs_on_the_parents_account(make_harness: MakeHarness) -> None:
    accounts = (EmulatedAccountSpec(1, "pro"), EmulatedAccountSpec(2, "pro"))
    harness = await make_harness(accounts=accounts)
    grid = await harness.completed("imagine", prompt="p --fast", bot_id=2)
    child = await harness.create("upscale", origin_task_id=grid["task_id"], index="1", bot_id=1)
    assert child["meta"]["process_mode"] == "fast"
    received = (await harness.client.get("/_emulator/received")).json()["received"]
    assert received[-1]["effective_bot_id"] == 2
    assert (await harness.account(2))["submitted"]["fast"] == 1


async def test_image_route_serves_a_png(harness: Harness) -> None:
    grid = await harness.completed("imagine", prompt="p")
    path = grid["output"]["temporary_image_urls"][2].removeprefix("http://127.0.0.1:8090")
    response = await harness.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    png = response.content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR"
    assert (
        zlib.crc32(png[12 : 16 + length]) == struct.unpack(">I", png[16 + length : 20 + length])[0]
    )
    assert png.endswith(b"IEND\xaeB`\x82")
