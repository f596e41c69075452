"""Resolving the requested mode of a task (GoAPI's `process_mode` and prompt flags).

`process_mode` wins over the prompt's flag in both directions; an empty or `mixed`
`process_mode` means "use the prompt"; a prompt without a flag means relax. A flag counts only
as a whole word preceded by whitespace (or at the very start): `--fastest` is not `--fast`,
`a--fast` is not a flag. When several flags appear, the last one wins, as Midjourney reads them.
"""

from __future__ import annotations

import re

from routing.errors import UnknownModeError
from routing.model import Mode

_FLAG = re.compile(r"(?:^|(?<=\s))--(relax|fast|turbo)(?=\s|$)")
_USE_PROMPT = frozenset({"", "mixed"})


def prompt_flag(prompt: str) -> Mode | None:
    """The last mode flag written in the prompt, or None."""
    found = _FLAG.findall(prompt)
    return Mode(found[-1]) if found else None


def resolve_mode(process_mode: str | None, prompt: str | None) -> Mode:
    """The requested mode: explicit `process_mode` > prompt flag > relax."""
    value = (process_mode or "").strip().lower()
    if value not in _USE_PROMPT:
        try:
            return Mode(value)
        except ValueError as exc:
            raise UnknownModeError(value) from exc
    return prompt_flag(prompt or "") or Mode.RELAX
