"""Validation of Midjourney create requests against GoAPI's inputs for each task type.

Each failure raises InvalidRequestError naming the field (`input.prompt`, `task_type`, ...).
Nothing is reserved or sent before validation passes. Accepted values are normalised
(an integer upscale index becomes the string GoAPI expects); unknown extra fields in `input`
are kept and sent as they are, as GoAPI may grow them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from gateway.errors import InvalidRequestError
from routing.errors import UnknownModeError
from routing.model import Mode, TaskType
from routing.modes import resolve_mode

_ASPECT = re.compile(r"^[1-9]\d{0,3}:[1-9]\d{0,3}$")
_GRID_INDEXES = frozenset({"1", "2", "3", "4"})
UPSCALE_INDEXES = _GRID_INDEXES | {"light", "beta", "2x", "4x", "subtle", "creative"}
VARIATION_INDEXES = _GRID_INDEXES | {"high_variation", "low_variation"}
PAN_DIRECTIONS = frozenset({"up", "down", "left", "right"})
BLEND_DIMENSIONS = frozenset({"square", "portrait", "landscape"})
SERVICE_MODES = frozenset({"", "public", "private"})
PROCESS_MODES = frozenset({"", "mixed", "relax", "fast", "turbo"})
# A task id (mjgate's or the upstream's): letters, digits, `-` and `_`, at most 64 characters.
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DEPTH = 16  # nesting of `input` and `config` (objects and lists)
MAX_NODES = 10_000  # values in `input` and `config` together
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"})
_DATA_URI = re.compile(r"data:([a-z]+/[a-z0-9.+-]+);base64,(.*)", re.DOTALL | re.IGNORECASE)


def check_task_id(value: object, field: str = "task_id") -> str:
    """A task id that can be used in a path as it is: 400 otherwise, never forwarded."""
    if not isinstance(value, str) or not TASK_ID.fullmatch(value):
        raise InvalidRequestError(
            field, "is not a task id (letters, digits, - and _, at most 64 characters)"
        )
    return value


def check_shape(value: object, field: str) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH or with more than MAX_NODES values (checked
    without recursion, before anything is reserved or stored)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InvalidRequestError(field, f"has more than {MAX_NODES} values")
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidRequestError(field, f"is nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


@dataclass(frozen=True)
class WebhookConfig:
    endpoint: str
    secret: str


@dataclass(frozen=True)
class CreateRequest:
    task_type: TaskType
    input: dict[str, Any]
    config: dict[str, Any]
    webhook: WebhookConfig | None
    mode: Mode | None  # requested mode of a root task; None for child tasks
    index: str | None
    origin_task_id: str | None


def _expect_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequestError(field, "must be a JSON object")
    return value


def _string(data: dict[str, Any], key: str, prefix: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidRequestError(f"{prefix}.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{prefix}.{key}", "must be a string")
    if required and not value.strip():
        raise InvalidRequestError(f"{prefix}.{key}", "must not be empty")
    return value


def _http_url(value: str, field: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidRequestError(field, "must be an http(s) URL")


def _image_ref(value: str, field: str) -> None:
    """An http(s) URL, or a `data:image/<type>;base64,<data>` URI with valid base64."""
    if value[:5].lower() != "data:":
        _http_url(value, field)
        return
    match = _DATA_URI.fullmatch(value)
    if match is None:
        raise InvalidRequestError(field, "must be an http(s) URL or a data:image/...;base64 URI")
    media_type = match.group(1).lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequestError(
            field, f"data URI media type must be one of {', '.join(sorted(IMAGE_MEDIA_TYPES))}"
        )
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(field, "data URI is not valid base64") from exc
    if not decoded:
        raise InvalidRequestError(field, "data URI holds no image")


def _index(data: dict[str, Any], allowed: frozenset[str]) -> str:
    value = data.get("index")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or value not in allowed:
        raise InvalidRequestError("input.index", f"must be one of {', '.join(sorted(allowed))}")
    data["index"] = value
    return value


def _check_common(data: dict[str, Any], max_prompt: int) -> None:
    prompt = data.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidRequestError("input.prompt", "must be a string")
        if len(prompt) > max_prompt:
            raise InvalidRequestError("input.prompt", f"is longer than {max_prompt} characters")
    aspect = data.get("aspect_ratio")
    if aspect not in (None, "") and (not isinstance(aspect, str) or not _ASPECT.match(aspect)):
        raise InvalidRequestError("input.aspect_ratio", "must be W:H with whole numbers, e.g. 16:9")
    if "skip_prompt_check" in data and not isinstance(data["skip_prompt_check"], bool):
        raise InvalidRequestError("input.skip_prompt_check", "must be true or false")
    bot_id = data.get("bot_id")
    if bot_id is not None and (
        not isinstance(bot_id, int) or isinstance(bot_id, bool) or bot_id < 0
    ):
        raise InvalidRequestError("input.bot_id", "must be a non-negative integer")
    mode = data.get("process_mode")
    if mode is not None and (
        not isinstance(mode, str) or mode.strip().lower() not in PROCESS_MODES
    ):
        raise InvalidRequestError("input.process_mode", "must be relax, fast, turbo or empty")


def _check_type_fields(task_type: TaskType, data: dict[str, Any]) -> str | None:
    """Per-type required fields; returns the index for upscale/variation."""
    if task_type is TaskType.IMAGINE:
        _string(data, "prompt", "input", required=True)
    elif task_type is TaskType.DESCRIBE:
        url = _string(data, "image_url", "input", required=True)
        _image_ref(url or "", "input.image_url")
    elif task_type is TaskType.BLEND:
        urls = data.get("image_urls")
        if not isinstance(urls, list) or not 2 <= len(urls) <= 5:
            raise InvalidRequestError("input.image_urls", "must be a list of 2 to 5 image URLs")
        for position, url in enumerate(urls):
            if not isinstance(url, str):
                raise InvalidRequestError(f"input.image_urls[{position}]", "must be a string")
            _image_ref(url, f"input.image_urls[{position}]")
        dimension = data.get("dimension")
        if dimension not in (None, "") and not _one_of(dimension, BLEND_DIMENSIONS):
            raise InvalidRequestError("input.dimension", "must be square, portrait or landscape")
    elif task_type is TaskType.UPSCALE:
        return _index(data, UPSCALE_INDEXES)
    elif task_type is TaskType.VARIATION:
        return _index(data, VARIATION_INDEXES)
    elif task_type is TaskType.PAN:
        if not _one_of(data.get("direction"), PAN_DIRECTIONS):
            raise InvalidRequestError("input.direction", "must be up, down, left or right")
    elif task_type is TaskType.OUTPAINT:
        _check_zoom(data)
    elif task_type is TaskType.INPAINT:
        _string(data, "mask", "input", required=True)
    return None


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    """`value in allowed` for any JSON value (a list or object is never in a set of strings)."""
    return isinstance(value, str) and value in allowed


def _check_zoom(data: dict[str, Any]) -> None:
    value = data.get("zoom_ratio")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value:g}"
        data["zoom_ratio"] = value
    try:
        ratio = float(value) if isinstance(value, str) else 0.0
    except ValueError:
        ratio = 0.0
    if not 1.0 <= ratio <= 2.0:
        raise InvalidRequestError(
            "input.zoom_ratio",
            'must be a number from 1 to 2, as a string ("1" makes the image square)',
        )


def _webhook(config: dict[str, Any]) -> WebhookConfig | None:
    hook = config.get("webhook_config")
    if hook is None:
        return None
    hook = _expect_object(hook, "config.webhook_config")
    endpoint = _string(hook, "endpoint", "config.webhook_config") or ""
    secret = _string(hook, "secret", "config.webhook_config") or ""
    if not endpoint:
        return None
    _http_url(endpoint, "config.webhook_config.endpoint")
    return WebhookConfig(endpoint, secret)


def validate_create(body: dict[str, Any], *, max_prompt_length: int) -> CreateRequest:
    """Validate a Midjourney create body (its `model` already checked)."""
    raw_type = body.get("task_type")
    try:
        task_type = TaskType(raw_type if isinstance(raw_type, str) else "")
    except ValueError as exc:
        raise InvalidRequestError(
            "task_type", f"must be one of {', '.join(t.value for t in TaskType)}"
        ) from exc
    data = dict(_expect_object(body.get("input", {}), "input"))
    config = dict(_expect_object(body.get("config") or {}, "config"))
    check_shape(data, "input")
    check_shape(config, "config")
    service_mode = config.get("service_mode", "")
    if not _one_of(service_mode, SERVICE_MODES):
        raise InvalidRequestError("config.service_mode", "must be public, private or empty")
    webhook = _webhook(config)
    _check_common(data, max_prompt_length)
    index = _check_type_fields(task_type, data)
    origin = None
    if not task_type.is_root:
        origin = check_task_id(
            _string(data, "origin_task_id", "input", required=True), "input.origin_task_id"
        )
    mode = None
    if task_type.is_root:
        try:
            mode = resolve_mode(data.get("process_mode"), data.get("prompt"))
        except UnknownModeError as exc:  # pragma: no cover - _check_common caught it
            raise InvalidRequestError("input.process_mode", str(exc)) from exc
    return CreateRequest(task_type, data, config, webhook, mode, index, origin)
