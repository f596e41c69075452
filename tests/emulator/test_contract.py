"""The GoAPI contract: envelope, task object shape and key order, auth, validation, cancel."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from emulator.validation import PROMPT_FORMAT_MESSAGE
from tests.emulator.conftest import KEY, Harness, MakeHarness

TASK_KEYS = [
    "task_id",
    "model",
    "task_type",
    "status",
    "config",
    "input",
    "output",
    "meta",
    "detail",
    "logs",
    "error",
]
META_KEYS = [
    "created_at",
    "started_at",
    "ended_at",
    "usage",
    "is_using_private_pool",
    "model_version",
    "process_mode",
    "failover_triggered",
]
ZERO = "0001-01-01T00:00:00Z"


async def test_create_answer_is_the_envelope_with_a_pending_task(harness: Harness) -> None:
    response = await harness.post("imagine", prompt="flying night city", aspect_ratio="16:9")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["code", "data", "message"]
    assert body["code"] == 200 and body["message"] == "success"
    data = body["data"]
    assert list(data) == TASK_KEYS
    assert list(data["meta"]) == META_KEYS
    assert uuid.UUID(data["task_id"]).version == 4
    assert data["model"] == "midjourney" and data["task_type"] == "imagine"
    assert data["status"] == "pending"
    assert data["output"] is None
    assert data["meta"]["started_at"] == ZERO and data["meta"]["ended_at"] == ZERO
    assert data["meta"]["created_at"].endswith("Z") and data["meta"]["created_at"] != ZERO
    assert data["meta"]["usage"]["type"] == "point"
    assert data["meta"]["usage"]["frozen"] > 0 and data["meta"]["usage"]["consume"] == 0
    assert data["meta"]["process_mode"] == "relax"  # no flag, no process_mode: relax
    assert data["meta"]["is_using_private_pool"] is False
    assert data["config"] == {
        "service_mode": "public",
        "webhook_config": {"endpoint": "", "secret": ""},
    }
    assert data["input"] == {"aspect_ratio": "16:9", "prompt": "flying night city"}
    assert data["detail"] is None and data["logs"] == []
    assert data["error"] == {"code": 0, "raw_message": "", "message": "", "detail": None}


async def test_phases_pending_processing_completed(harness: Harness) -> None:
    task = await harness.create("imagine", prompt="a cat --fast")
    task_id = task["task_id"]
    harness.tick(1.9)
    assert (await harness.get(task_id))["status"] == "pending"
    harness.tick(0.2)
    processing = await harness.get(task_id)
    assert processing["status"] == "processing"
    assert processing["meta"]["started_at"] != ZERO and processing["meta"]["ended_at"] == ZERO
    assert processing["output"]["progress"] == 0
    seen = set()
    for _ in range(5):
        harness.tick(1.0)
        seen.add((await harness.get(task_id))["output"]["progress"])
    done = await harness.get(task_id)
    assert done["status"] == "completed"
    assert {25, 50, 75, 100} <= seen
    assert done["meta"]["ended_at"] != ZERO
    assert done["meta"]["usage"]["consume"] == done["meta"]["usage"]["frozen"]
    assert done["meta"]["process_mode"] == "fast"


async def test_input_is_echoed_with_sorted_keys(harness: Harness) -> None:
    task = await harness.create(
        "imagine", skip_prompt_check=False, prompt="p", bot_id=0, aspect_ratio="1:1"
    )
    assert list(task["input"]) == ["aspect_ratio", "bot_id", "prompt", "skip_prompt_check"]


async def test_webhook_config_is_echoed(harness: Harness) -> None:
    hook = {"endpoint": "http://127.0.0.1:9/hook", "secret": "s3"}
    task = await harness.create("imagine", prompt="p", config={"webhook_config": hook})
    assert task["config"]["webhook_config"] == hook


async def test_get_unknown_task_is_404(harness: Harness) -> None:
    response = await harness.client.get(f"/api/v1/task/{uuid.uuid4()}", headers=KEY)
    assert response.status_code == 404
    assert response.json()["code"] == 404 and response.json()["data"] is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": ""}, {"authorization": "Basic abc"}, {"x-api-key": "wrong"}],
)
async def test_missing_or_wrong_key_is_401(make_harness: MakeHarness, headers: Any) -> None:
    harness = await make_harness(api_key="right")
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p"}}
    response = await harness.client.post("/api/v1/task", json=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": 401, "data": None, "message": response.json()["message"]}
    assert (
        await harness.client.get(f"/api/v1/task/{uuid.uuid4()}", headers=headers)
    ).status_code == 401


async def test_bearer_and_fixed_key_are_accepted(make_harness: MakeHarness) -> None:
    harness = await make_harness(api_key="right")
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p"}}
    for headers in ({"x-api-key": "right"}, {"authorization": "Bearer right"}):
        response = await harness.client.post("/api/v1/task", json=body, headers=headers)
        assert response.status_code == 200


async def test_any_key_is_accepted_without_a_configured_key(harness: Harness) -> None:
    body = {"model": "midjourney", "task_type": "imagine", "input": {"prompt": "p"}}
    headers = {"authorization": "Bearer whatever"}
    assert (
        await harness.client.post("/api/v1/task", json=body, headers=headers)
    ).status_code == 200


@pytest.mark.parametrize(
    ("task_type", "fields", "named"),
    [
        ("imagine", {}, "input.prompt"),
        ("imagine", {"prompt": "p", "aspect_ratio": "16x9"}, "input.aspect_ratio"),
        ("imagine", {"prompt": "p", "aspect_ratio": "0:1"}, "input.aspect_ratio"),
        ("imagine", {"prompt": "p", "process_mode": "slow"}, "input.process_mode"),
        ("imagine", {"prompt": "p", "bot_id": "7"}, "input.bot_id"),
        ("imagine", {"prompt": "p", "bot_id": -1}, "input.bot_id"),
        ("imagine", {"prompt": "p", "skip_prompt_check": "no"}, "input.skip_prompt_check"),
        ("describe", {}, "input.image_url"),
        ("blend", {"image_urls": ["http://127.0.0.1/a.png"]}, "input.image_urls"),
        ("blend", {"image_urls": ["a", "b"], "dimension": "round"}, "input.dimension"),
        ("upscale", {"index": "1"}, "input.origin_task_id"),
        ("upscale", {"origin_task_id": "x", "index": "5"}, "input.index"),
        ("upscale", {"origin_task_id": "x", "index": 1}, "input.index"),
        ("variation", {"origin_task_id": "x", "index": "subtle"}, "input.index"),
        ("pan", {"origin_task_id": "x", "direction": "north"}, "input.direction"),
        ("outpaint", {"origin_task_id": "x", "zoom_ratio": "3"}, "input.zoom_ratio"),
        ("outpaint", {"origin_task_id": "x", "zoom_ratio": "big"}, "input.zoom_ratio"),
        ("inpaint", {"origin_task_id": "x"}, "input.mask"),
        ("seed", {}, "input.origin_task_id"),
    ],
)
async def test_invalid_fields_are_400_naming_the_field(
    harness: Harness, task_type: str, fields: dict[str, Any], named: str
) -> None:
    response = await harness.post(task_type, **fields)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400 and response.json()["data"] is None
    assert named in response.json()["message"]


async def test_other_models_and_task_types_are_400(harness: Harness) -> None:
    for body, named in (
        ({"model": "flux", "task_type": "txt2img", "input": {"prompt": "p"}}, "model"),
        ({"model": "midjourney", "task_type": "zoom", "input": {}}, "task_type"),
        ({"model": "midjourney", "task_type": "imagine", "input": "p"}, "input"),
    ):
        response = await harness.client.post("/api/v1/task", json=body, headers=KEY)
        assert response.status_code == 400 and named in response.json()["message"]
    response = await harness.client.post("/api/v1/task", content=b"{nope", headers=KEY)
    assert response.status_code == 400


async def test_glued_flag_is_refused_unless_prompt_check_is_skipped(harness: Harness) -> None:
    response = await harness.post("imagine", prompt="a cat--ar 16:9")
    assert response.status_code == 500
    assert response.json()["message"] == PROMPT_FORMAT_MESSAGE
    assert (
        await harness.post("imagine", prompt="a cat--ar 1:1", skip_prompt_check=True)
    ).is_success


async def test_cancel_only_while_pending(harness: Harness) -> None:
    task = await harness.create("imagine", prompt="p")
    response = await harness.client.delete(f"/api/v1/task/{task['task_id']}", headers=KEY)
    assert response.status_code == 200
    assert response.json() == {"code": 200, "message": f"task {task['task_id']} canceled"}
    canceled = await harness.get(task["task_id"])
    assert canceled["status"] == "failed"
    assert canceled["error"]["message"] == "task canceled"
    assert canceled["meta"]["usage"]["consume"] == 0

    running = await harness.create("imagine", prompt="p")
    harness.tick(3)
    response = await harness.client.delete(f"/api/v1/task/{running['task_id']}", headers=KEY)
    assert response.status_code == 400 and "processing" in response.json()["message"]
    again = await harness.client.delete(f"/api/v1/task/{task['task_id']}", headers=KEY)
    assert again.status_code == 400
    missing = await harness.client.delete(f"/api/v1/task/{uuid.uuid4()}", headers=KEY)
    assert missing.status_code == 404


async def test_unknown_route_uses_the_envelope(harness: Harness) -> None:
    response = await harness.client.get("/api/v2/whatever")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "data": None, "message": "Not Found"}


async def test_default_config_is_a_public_pool(make_harness: MakeHarness) -> None:
    harness = await make_harness(EmulatorConfig())
    task = await harness.create("imagine", prompt="p", process_mode="turbo", bot_id=77)
    assert task["meta"]["process_mode"] == "turbo"
    assert task["meta"]["is_using_private_pool"] is False
