"""Mode resolution (GoAPI's `process_mode` and prompt flags): process_mode > prompt flag > relax."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.errors import UnknownModeError
from routing.model import Mode
from routing.modes import prompt_flag, resolve_mode

FLAGS = ["--relax", "--fast", "--turbo"]
words = st.text(alphabet="abcxyz-:0123 ", min_size=0, max_size=12)


@pytest.mark.parametrize(
    ("process_mode", "prompt", "expected"),
    [
        (None, "a cat", Mode.RELAX),
        ("", "a cat", Mode.RELAX),
        ("mixed", "a cat --fast", Mode.FAST),
        ("", "a cat --turbo", Mode.TURBO),
        ("fast", "a cat --relax", Mode.FAST),
        ("relax", "a cat --turbo", Mode.RELAX),
        ("turbo", "a cat", Mode.TURBO),
        ("FAST", "a cat", Mode.FAST),
        (None, "--fast a cat", Mode.FAST),
        (None, "a cat --fastest", Mode.RELAX),
        (None, "a cat--fast", Mode.RELAX),
        (None, "a cat --fast --relax", Mode.RELAX),
        (None, "a cat --relax\t--turbo", Mode.TURBO),
        (None, "a cat --ar 16:9 --fast --v 6", Mode.FAST),
        (None, None, Mode.RELAX),
    ],
)
def test_precedence_table(process_mode: str | None, prompt: str | None, expected: Mode) -> None:
    assert resolve_mode(process_mode, prompt) is expected


def test_unknown_process_mode_is_refused() -> None:
    with pytest.raises(UnknownModeError):
        resolve_mode("slow", "a cat")


@given(st.lists(st.one_of(words, st.sampled_from(FLAGS)), max_size=8))
def test_last_whole_word_flag_wins(parts: list[str]) -> None:
    prompt = " ".join(parts)
    tokens = prompt.split()
    flags = [t for t in tokens if t in FLAGS]
    expected = Mode(flags[-1][2:]) if flags else Mode.RELAX
    assert resolve_mode("", prompt) is expected
    assert resolve_mode("mixed", prompt) is expected


@given(st.sampled_from(["relax", "fast", "turbo"]), st.text(max_size=40))
def test_explicit_mode_always_wins(mode: str, prompt: str) -> None:
    assert resolve_mode(mode, prompt) is Mode(mode)


@given(st.sampled_from(FLAGS), st.text(alphabet="abcdefghij", min_size=1, max_size=5))
def test_flag_glued_to_a_word_is_not_a_flag(flag: str, suffix: str) -> None:
    assert prompt_flag(f"x {flag}{suffix}") is None
    assert prompt_flag(f"x{flag}") is None
