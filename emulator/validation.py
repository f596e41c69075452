"""Validating `POST /api/v1/task` bodies against GoAPI's task types and inputs.

Every refusal is a BadRequest whose message names the field (`input.index must be ...`).
Values are checked strictly (an index is a string, a bot_id an integer) so that a gateway
sending a malformed body is caught in tests rather than passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import BadRequest, EmulatorError
from emulator.facts import TaskType
from emulator.modes import Requested, UnknownMode, requested

UPSCALE_INDEXES = frozenset({"1", "2", "3", "4", "light", "beta", "2x", "4x", "subtle", "creative"})
VARIATION_INDEXES = frozenset({"1", "2", "3", "4", "high_variation", "low_variation"})
PAN_DIRECTIONS = frozenset({"up", "down", "left", "right"})
BLEND_DIMENSIONS = frozenset({"square", "portrait", "landscape"})
_ASPECT_RATIO = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")
# GoAPI refuses `word--flag` at create with 500 unless skip_prompt_check is set [M].
_GLUED_FLAG = re.compile(r"(?<=\S)--(?=[A-Za-z])")
PROMPT_FORMAT_MESSAGE = "Invalid Param Format: there should be space before --"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A valid create. `input` and the webhook fields are kept as sent, for the task object."""

    task_type: TaskType
    input: dict[str, Any]
    asked: Requested  # the mode from `process_mode` and the prompt (children: see modes)
    bot_id: int
    origin_task_id: str | None
    index: str | None
    service_mode: str
    webhook_endpoint: str
    webhook_secret: str


def summary(body: Any) -> dict[str, Any]:
    """What the received log keeps of any body, valid or not, without raising."""
    data = body if isinstance(body, Mapping) else {}
    raw_input = data.get("input")
    given = raw_input if isinstance(raw_input, Mapping) else {}
    return {
        "task_type": data.get("task_type"),
        "bot_id": given.get("bot_id"),
        "process_mode": given.get("process_mode"),
        "prompt": given.get("prompt"),
        "origin_task_id": given.get("origin_task_id"),
    }


def parse_create(body: Any) -> CreateRequest:
    if not isinstance(body, Mapping):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model")
    if model != "midjourney":
        raise BadRequest(f"model: unsupported model {model!r}, this emulator runs 'midjourney'")
    raw_type = body.get("task_type")
    try:
        task_type = TaskType(str(raw_type))
    except ValueError:
        names = ", ".join(t.value for t in TaskType)
        raise BadRequest(f"task_type must be one of {names}, not {raw_type!r}") from None
    given = body.get("input")
    if not isinstance(given, Mapping):
        raise BadRequest("input must be a JSON object")
    service_mode, endpoint, secret = _config(body.get("config"))
    bot_id = given.get("bot_id", 0)
    if isinstance(bot_id, bool) or not isinstance(bot_id, int) or bot_id < 0:
        raise BadRequest("input.bot_id must be a non-negative integer")
    _optional(given, "skip_prompt_check", bool, "a boolean")
    process_mode = _optional(given, "process_mode", str, "a string")
    prompt = _optional(given, "prompt", str, "a string")
    try:
        asked = requested(process_mode, prompt)
    except UnknownMode:
        raise BadRequest("input.process_mode must be relax, fast, turbo, mixed or empty") from None
    _check_aspect_ratio(given)
    origin, index = _check_type_fields(task_type, given)
    glued = task_type is TaskType.IMAGINE and _GLUED_FLAG.search(prompt or "")
    if glued and given.get("skip_prompt_check") is not True:
        raise EmulatorError(PROMPT_FORMAT_MESSAGE, status=500)
    return CreateRequest(
        task_type=task_type,
        input=dict(given),
        asked=asked,
        bot_id=bot_id,
        origin_task_id=origin,
        index=index,
        service_mode=service_mode,
        webhook_endpoint=endpoint,
        webhook_secret=secret,
    )


def _config(raw: Any) -> tuple[str, str, str]:
    if raw is None:
        return "", "", ""
    if not isinstance(raw, Mapping):
        raise BadRequest("config must be a JSON object")
    service_mode = _optional(raw, "service_mode", str, "a string", "config") or ""
    if service_mode not in ("", "public", "private"):
        raise BadRequest("config.service_mode must be public, private or empty")
    hook = raw.get("webhook_config")
    if hook is None:
        return service_mode, "", ""
    if not isinstance(hook, Mapping):
        raise BadRequest("config.webhook_config must be a JSON object")
    endpoint = _optional(hook, "endpoint", str, "a string", "config.webhook_config") or ""
    secret = _optional(hook, "secret", str, "a string", "config.webhook_config") or ""
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise BadRequest("config.webhook_config.endpoint must be an http(s) URL")
    return service_mode, endpoint, secret


def _optional(
    data: Mapping[str, Any], name: str, kind: type, what: str, where: str = "input"
) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise BadRequest(f"{where}.{name} must be {what}")
    return value


def _required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"input.{name} is required (a non-empty string)")
    return value


def _one_of(data: Mapping[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = data.get(name)
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"input.{name} must be one of {', '.join(sorted(allowed))}")
    return value


def _check_aspect_ratio(given: Mapping[str, Any]) -> None:
    value = given.get("aspect_ratio")
    if value is None or value == "":
        return
    if not isinstance(value, str) or not _ASPECT_RATIO.match(value):
        raise BadRequest("input.aspect_ratio must be W:H with positive integers, e.g. 16:9")


def _check_type_fields(
    task_type: TaskType, given: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """Type-specific fields; returns (origin_task_id, index)."""
    if task_type is TaskType.IMAGINE:
        _required_text(given, "prompt")
        return None, None
    if task_type is TaskType.DESCRIBE:
        _required_text(given, "image_url")
        return None, None
    if task_type is TaskType.BLEND:
        urls = given.get("image_urls")
        if not isinstance(urls, list) or not 2 <= len(urls) <= 5:
            raise BadRequest("input.image_urls must be a list of 2 to 5 image URLs")
        if not all(isinstance(url, str) and url for url in urls):
            raise BadRequest("input.image_urls must hold non-empty strings")
        if given.get("dimension") not in (None, ""):
            _one_of(given, "dimension", BLEND_DIMENSIONS)
        return None, None
    origin = _required_text(given, "origin_task_id")
    index: str | None = None
    if task_type is TaskType.UPSCALE:
        index = _one_of(given, "index", UPSCALE_INDEXES)
    elif task_type is TaskType.VARIATION:
        index = _one_of(given, "index", VARIATION_INDEXES)
    elif task_type is TaskType.PAN:
        _one_of(given, "direction", PAN_DIRECTIONS)
    elif task_type is TaskType.OUTPAINT:
        _check_zoom_ratio(given.get("zoom_ratio"))
    elif task_type is TaskType.INPAINT:
        _required_text(given, "mask")
    return origin, index


def _check_zoom_ratio(value: Any) -> None:
    """A string (or number) from 1 ("make square") to 2 [M]."""
    message = 'input.zoom_ratio must be a number from 1 to 2 as a string, e.g. "1.5"'
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(message)
    try:
        ratio = float(value)
    except ValueError:
        raise BadRequest(message) from None
    if not 1.0 <= ratio <= 2.0:
        raise BadRequest(message)
