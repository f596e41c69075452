"""Input validation per GoAPI's inputs: each failure is a 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.validation import check_task_id, validate_create
from gateway.errors import InvalidRequestError
from routing.model import Mode, TaskType


def check(task_type: str, data: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"model": "midjourney", "task_type": task_type, "input": data}
    if config is not None:
        body["config"] = config
    return validate_create(body, max_prompt_length=100)


PARENT = {"origin_task_id": "3f0c9a4e-0000-4000-8000-000000000000"}


@pytest.mark.parametrize(
    ("task_type", "data", "field"),
    [
        ("paint", {"prompt": "x"}, "task_type"),
        ("imagine", {}, "input.prompt"),
        ("imagine", {"prompt": "   "}, "input.prompt"),
        ("imagine", {"prompt": 3}, "input.prompt"),
        ("imagine", {"prompt": "x" * 101}, "input.prompt"),
        ("imagine", {"prompt": "x", "aspect_ratio": "16x9"}, "input.aspect_ratio"),
        ("imagine", {"prompt": "x", "aspect_ratio": "0:9"}, "input.aspect_ratio"),
        ("imagine", {"prompt": "x", "process_mode": "slow"}, "input.process_mode"),
        ("imagine", {"prompt": "x", "skip_prompt_check": "yes"}, "input.skip_prompt_check"),
        ("imagine", {"prompt": "x", "bot_id": -1}, "input.bot_id"),
        ("describe", {}, "input.image_url"),
        ("describe", {"image_url": "ftp://x/y.png"}, "input.image_url"),
        ("blend", {"image_urls": ["http://127.0.0.1/1.png"]}, "input.image_urls"),
        ("blend", {"image_urls": ["http://127.0.0.1/1.png", 2]}, "input.image_urls[1]"),
        (
            "blend",
            {
                "image_urls": ["http://127.0.0.1/1.png", "http://127.0.0.1/2.png"],
                "dimension": "round",
            },
            "input.dimension",
        ),
        ("upscale", {**PARENT, "index": "5"}, "input.index"),
        ("upscale", {"index": "1"}, "input.origin_task_id"),
        ("variation", {**PARENT, "index": "2x"}, "input.index"),
        ("pan", {**PARENT, "direction": "north"}, "input.direction"),
        ("outpaint", {**PARENT, "zoom_ratio": "3"}, "input.zoom_ratio"),
        ("outpaint", {**PARENT, "zoom_ratio": "big"}, "input.zoom_ratio"),
        ("inpaint", {**PARENT}, "input.mask"),
    ],
)
def test_bad_input_names_the_field(task_type: str, data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check(task_type, data)
    assert caught.value.details["field"] == field
    assert caught.value.status == 400 and caught.value.type == "invalid_request"


def test_bad_config_names_the_field() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check("imagine", {"prompt": "x"}, {"service_mode": "shared"})
    assert caught.value.details["field"] == "config.service_mode"
    with pytest.raises(InvalidRequestError) as caught:
        check("imagine", {"prompt": "x"}, {"webhook_config": {"endpoint": "not a url"}})
    assert caught.value.details["field"] == "config.webhook_config.endpoint"


def test_root_task_resolves_mode_and_child_does_not() -> None:
    root = check("imagine", {"prompt": "a cat --turbo"})
    assert root.mode is Mode.TURBO and root.task_type is TaskType.IMAGINE
    child = check("upscale", {**PARENT, "index": 2})
    assert child.mode is None and child.index == "2" and child.input["index"] == "2"
    assert child.origin_task_id == PARENT["origin_task_id"]


def test_every_task_type_accepts_its_documented_input() -> None:
    check(
        "imagine",
        {
            "prompt": "x",
            "aspect_ratio": "16:9",
            "process_mode": "fast",
            "skip_prompt_check": False,
            "bot_id": 0,
        },
    )
    check("describe", {"image_url": "https://127.0.0.1/a.png"})
    check(
        "blend",
        {"image_urls": ["http://127.0.0.1/1.png", "http://127.0.0.1/2.png"], "dimension": "square"},
    )
    for index in ["1", "light", "beta", "2x", "4x", "subtle", "creative"]:
        check("upscale", {**PARENT, "index": index})
    for index in ["4", "high_variation", "low_variation"]:
        check("variation", {**PARENT, "index": index, "prompt": "y"})
    check("reroll", {**PARENT, "prompt": "z", "aspect_ratio": "1:1"})
    check("outpaint", {**PARENT, "zoom_ratio": "1.5"})
    assert check("outpaint", {**PARENT, "zoom_ratio": 2}).input["zoom_ratio"] == "2"
    check("pan", {**PARENT, "direction": "left"})
    check("inpaint", {**PARENT, "mask": "aGVsbG8="})
    check("seed", {**PARENT})


def test_webhook_config_is_kept_apart() -> None:
    request = check(
        "imagine",
        {"prompt": "x"},
        {"webhook_config": {"endpoint": "http://127.0.0.1:9/x", "secret": "s"}},
    )
    assert request.webhook is not None and request.webhook.secret == "s"


PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAH"
    "ggJ/PchI7wAAAABJRU5ErkJggg=="
)


def test_data_uris_are_accepted_for_describe_and_blend() -> None:
    assert check("describe", {"image_url": PNG}).input["image_url"] == PNG
    jpeg = "data:image/jpeg;base64,/9j/4AAQSkZJRg=="
    assert check("blend", {"image_urls": [PNG, jpeg, "https://localhost/a.png"]})


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png;base64,not base64!",
        "data:image/png;base64,",
        "data:text/html;base64,PGgxPg==",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/png,rawbytes",
        "data:;base64,iVBORw0KGgo=",
    ],
)
def test_bad_data_uris_name_the_field(uri: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check("describe", {"image_url": uri})
    assert caught.value.details["field"] == "input.image_url"
    with pytest.raises(InvalidRequestError) as caught:
        check("blend", {"image_urls": [PNG, uri]})
    assert caught.value.details["field"] == "input.image_urls[1]"


@pytest.mark.parametrize("task_id", ["..", ".", "a/b", "abc?x=1", "a\x00", "a\r\nb", "x" * 65, "é"])
def test_task_ids_are_plain(task_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        check_task_id(task_id)
    assert check_task_id("3f0c9a4e-0000-4000-8000-000000000000")
    assert check_task_id("A_b-1" * 12)
