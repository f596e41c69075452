"""The mode a create asks for: `input.process_mode`, the prompt's flag, the parent's mode.

GoAPI's rules (its Midjourney API documentation):
- an explicit `process_mode` (relax, fast, turbo) wins over the prompt's flag, both ways;
- empty, absent or the legacy `mixed` means "use the prompt": its `--relax`, `--fast` or
  `--turbo` flag, and relax when it has none;
- child tasks (upscale, variation, reroll, ...) take no mode of their own: they inherit the
  parent's. An explicit `process_mode: relax` on a child is honoured (running relax never costs
  fast time, so a client may always ask for it); any other value, and any flag in a child's
  prompt, is ignored [L: GoAPI does not say whether children reject the field].

Tolerant readings [L]: `process_mode` is compared without case and surrounding spaces; a flag
counts only as a whole word of the prompt (`--fastest`, `a--fast` are not flags); when a prompt
holds several flags the last one counts, as Midjourney reads later parameters over earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.facts import Mode

PROMPT_FLAGS = {"--relax": Mode.RELAX, "--fast": Mode.FAST, "--turbo": Mode.TURBO}
USE_THE_PROMPT = ("", "mixed")


class UnknownMode(ValueError):
    """`process_mode` is none of relax, fast, turbo, mixed or empty."""


@dataclass(frozen=True, slots=True)
class Requested:
    mode: Mode
    explicit: bool  # `process_mode` named a mode (it was not empty, `mixed` or absent)


def prompt_flag(prompt: str) -> Mode | None:
    """The last mode flag among the prompt's words, or None."""
    found = None
    for word in prompt.split():
        found = PROMPT_FLAGS.get(word, found)
    return found


def requested(process_mode: str | None, prompt: str | None) -> Requested:
    """What a root task asks for; raises UnknownMode for any other `process_mode`."""
    value = (process_mode or "").strip().lower()
    if value in USE_THE_PROMPT:
        return Requested(prompt_flag(prompt or "") or Mode.RELAX, explicit=False)
    try:
        return Requested(Mode(value), explicit=True)
    except ValueError:
        raise UnknownMode(value) from None


def child_mode(parent: Mode, asked: Requested) -> Mode:
    """The mode a child asks for: relax if it says so explicitly, else its parent's."""
    if asked.explicit and asked.mode is Mode.RELAX:
        return Mode.RELAX
    return parent
