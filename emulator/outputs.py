"""What each task type produces, and which parents each child type accepts.

Grids (imagine, variation, reroll, blend, and [L] pan, outpaint and inpaint, which make grids in
Midjourney too) carry four crops and the grid buttons; upscales carry one image and the
buttons of an upscaled image (the strings are [L]: GoAPI does not document them); describe carries
four prompt lines; seed an integer. Image URLs point at the emulator's own image route.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from emulator.facts import TaskType


class OutputKind(StrEnum):
    GRID = "grid"
    UPSCALE = "upscale"
    DESCRIPTION = "description"
    SEED = "seed"


GRID_ACTIONS = (
    "reroll",
    "upscale1",
    "upscale2",
    "upscale3",
    "upscale4",
    "variation1",
    "variation2",
    "variation3",
    "variation4",
)
UPSCALE_ACTIONS = (
    "high_variation",
    "low_variation",
    "outpaint_1.5x",
    "outpaint_2x",
    "pan_down",
    "pan_left",
    "pan_right",
    "pan_up",
    "upscale_creative",
    "upscale_subtle",
)
_UPSCALE_OF_UPSCALE = frozenset({"subtle", "creative", "2x", "4x"})
_VARIATION_OF_UPSCALE = frozenset({"high_variation", "low_variation"})
_NUMBERS = ("1\ufe0f\u20e3", "2\ufe0f\u20e3", "3\ufe0f\u20e3", "4\ufe0f\u20e3")
_SUBJECTS = ("a lighthouse at dusk", "a city street in the rain", "a fox in tall grass", "a bowl")
_STYLES = ("oil painting", "cinematic photograph", "watercolor", "isometric render", "ink sketch")


def output_kind(task_type: TaskType) -> OutputKind:
    if task_type is TaskType.UPSCALE:
        return OutputKind.UPSCALE
    if task_type is TaskType.DESCRIBE:
        return OutputKind.DESCRIPTION
    if task_type is TaskType.SEED:
        return OutputKind.SEED
    return OutputKind.GRID


def parent_kinds(task_type: TaskType, index: str | None) -> frozenset[OutputKind]:
    """The output kinds a child's parent may have, as GoAPI documents each child type."""
    if task_type is TaskType.SEED:
        return frozenset(OutputKind)
    if task_type is TaskType.UPSCALE and index in _UPSCALE_OF_UPSCALE:
        return frozenset({OutputKind.UPSCALE})
    if task_type is TaskType.VARIATION and index in _VARIATION_OF_UPSCALE:
        return frozenset({OutputKind.UPSCALE})
    if task_type in (TaskType.OUTPAINT, TaskType.PAN, TaskType.INPAINT):
        return frozenset({OutputKind.UPSCALE})
    return frozenset({OutputKind.GRID})


def image_url(base_url: str, task_id: str, number: int) -> str:
    return f"{base_url}/_emulator/images/{task_id}/{number}.png"


def progress_output(progress: int) -> dict[str, Any]:
    return {
        "image_url": "",
        "image_urls": None,
        "temporary_image_urls": None,
        "discord_image_url": "",
        "actions": [],
        "progress": progress,
        "intermediate_image_urls": None,
    }


def completed_output(
    kind: OutputKind, task_id: str, base_url: str, *, parent_id: str | None
) -> dict[str, Any]:
    output = progress_output(100)
    if kind is OutputKind.GRID:
        output["image_url"] = image_url(base_url, task_id, 0)
        output["temporary_image_urls"] = [image_url(base_url, task_id, n) for n in range(1, 5)]
        output["actions"] = list(GRID_ACTIONS)
    elif kind is OutputKind.UPSCALE:
        output["image_url"] = image_url(base_url, task_id, 0)
        output["actions"] = list(UPSCALE_ACTIONS)
    elif kind is OutputKind.DESCRIPTION:
        output["description"] = describe_lines(task_id)
    else:
        output["seed"] = seed_of(parent_id or task_id)
    return output


def describe_lines(task_id: str) -> str:
    """Four prompt suggestions, Midjourney-style, stable for a given task."""
    digest = hashlib.sha256(task_id.encode()).digest()
    lines = []
    for n, number in enumerate(_NUMBERS):
        subject = _SUBJECTS[(digest[n] + n) % len(_SUBJECTS)]
        style = _STYLES[digest[n + 4] % len(_STYLES)]
        lines.append(f"{number} {subject}, {style}, soft light --ar 1:1")
    return "\n\n".join(lines)


def seed_of(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big")
