from __future__ import annotations

import pytest

from routing.costs import CostTable, parse_overrides
from routing.errors import CostTableError
from routing.model import Mode, TaskType


def test_turbo_costs_twice_fast_and_relax_nothing() -> None:
    table = CostTable()
    assert table.cost(TaskType.IMAGINE, Mode.FAST) == 60
    assert table.cost(TaskType.IMAGINE, Mode.TURBO) == 120
    assert table.cost(TaskType.IMAGINE, Mode.RELAX) == 0


def test_upscale_indexes_cost_differently() -> None:
    table = CostTable()
    assert table.cost(TaskType.UPSCALE, Mode.FAST, "2") == 0
    assert table.cost(TaskType.UPSCALE, Mode.FAST, "4x") == 360
    assert table.cost(TaskType.UPSCALE, Mode.TURBO, "subtle") == 240


def test_overrides_replace_defaults() -> None:
    table = CostTable.with_overrides(parse_overrides("imagine=45, upscale:4x=300"))
    assert table.cost(TaskType.IMAGINE, Mode.FAST) == 45
    assert table.cost(TaskType.UPSCALE, Mode.FAST, "4x") == 300
    assert table.cost(TaskType.DESCRIBE, Mode.FAST) == 10


@pytest.mark.parametrize("text", ["paint=3", "imagine=-1", "imagine=1.5", "imagine"])
def test_bad_overrides_are_refused(text: str) -> None:
    with pytest.raises(CostTableError):
        parse_overrides(text)
