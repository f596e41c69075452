"""The one place where the emulator's GoAPI facts meet mjgate's routing rules.

The emulator keeps its own tables (emulator.facts, emulator.modes), written from GoAPI's
documentation, so that end-to-end tests witness mjgate against GoAPI rather than against itself.
This test says whether the two copies agree: plans, fast-time costs, and the requested mode over
generated `process_mode` values and prompts. A failure is a disagreement to settle by reading
GoAPI's documentation, never by copying one side into the other.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emulator import facts, modes
from routing import model
from routing.costs import CostTable
from routing.errors import UnknownModeError
from routing.modes import resolve_mode

UPSCALE_INDEXES = ("1", "2", "3", "4", "light", "beta", "2x", "4x", "subtle", "creative")
VARIATION_INDEXES = ("1", "2", "3", "4", "high_variation", "low_variation")


def test_the_same_vocabulary() -> None:
    for ours, theirs in [
        (facts.TaskType, model.TaskType),
        (facts.Mode, model.Mode),
        (facts.Plan, model.Plan),
        (facts.Setting, model.Setting),
        (facts.SlotKind, model.SlotKind),
    ]:
        assert [m.value for m in ours] == [m.value for m in theirs], ours.__name__
    for task_type in facts.TaskType:
        assert task_type.is_root == model.TaskType(task_type.value).is_root, task_type
    for mode in facts.Mode:
        assert mode.slot.value == model.Mode(mode.value).slot.value, mode


@pytest.mark.parametrize("plan", list(facts.Plan))
def test_the_same_plans(plan: facts.Plan) -> None:
    ours, theirs = facts.PLANS[plan], model.PLANS[model.Plan(plan.value)]
    assert (ours.fast_seconds, ours.relax, ours.fast_slots, ours.relax_slots) == (
        theirs.fast_seconds_per_month,
        theirs.relax,
        theirs.fast_slots,
        theirs.relax_slots,
    )


def _every_task() -> list[tuple[facts.TaskType, str | None]]:
    tasks: list[tuple[facts.TaskType, str | None]] = [(t, None) for t in facts.TaskType]
    tasks += [(facts.TaskType.UPSCALE, index) for index in UPSCALE_INDEXES]
    tasks += [(facts.TaskType.VARIATION, index) for index in VARIATION_INDEXES]
    return tasks


@pytest.mark.parametrize(("task_type", "index"), _every_task())
def test_the_same_costs(task_type: facts.TaskType, index: str | None) -> None:
    ours, theirs = facts.Costs(), CostTable()
    for mode in facts.Mode:
        expected = theirs.cost(model.TaskType(task_type.value), model.Mode(mode.value), index)
        assert ours.charge(task_type, mode, index) == expected, (task_type, index, mode)


def test_overrides_are_read_alike() -> None:
    overrides = {"imagine": 45, "upscale": 5, "upscale:4x": 300, "variation:high_variation": 90}
    ours, theirs = facts.Costs(overrides), CostTable.with_overrides(overrides)
    for task_type, index in _every_task():
        for mode in facts.Mode:
            routed = model.TaskType(task_type.value), model.Mode(mode.value)
            assert ours.charge(task_type, mode, index) == theirs.cost(*routed, index), routed


WORDS = ["a", "cat", "--fast", "--relax", "--turbo", "--fastest", "a--fast", "--", "--ar", "16:9"]
SEPARATORS = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", ""]
prompts = st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=8).map(
    lambda parts: "".join(word + sep for word, sep in parts)
)
process_modes = st.one_of(
    st.none(),
    st.sampled_from(["", "mixed", "relax", "fast", "turbo", "FAST", " Relax ", "Mixed", "slow"]),
    st.text(max_size=6),
)


def _routing(process_mode: str | None, prompt: str | None) -> str:
    try:
        return resolve_mode(process_mode, prompt).value
    except UnknownModeError:
        return "refused"


def _emulator(process_mode: str | None, prompt: str | None) -> str:
    try:
        return modes.requested(process_mode, prompt).mode.value
    except modes.UnknownMode:
        return "refused"


@settings(max_examples=3000, deadline=None)
@given(process_modes, st.one_of(st.none(), prompts))
@example(None, "a cat --fast --relax")
@example(None, "a cat --fastest")
@example("mixed", "a --turbo")
@example("relax", "a --fast")
@example(" fast ", None)
def test_the_same_requested_mode(process_mode: str | None, prompt: str | None) -> None:
    assert _emulator(process_mode, prompt) == _routing(process_mode, prompt)
