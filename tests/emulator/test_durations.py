"""How long tasks take: fixed phases unchanged, one figure for every task, realistic medians per
type and mode, time scale, spread with bounds, and seeds. Statistical checks use fixed seeds and
thousands of draws with wide tolerances, so they are deterministic and cannot flake."""

from __future__ import annotations

import math
import statistics

import pytest

from emulator import cli
from emulator.config import ConfigError, EmulatedAccountSpec, EmulatorConfig
from emulator.durations import (
    BOUND_SIGMAS,
    MEDIAN_SECONDS,
    PENDING_SHARE,
    REALISTIC_SPREAD,
    Durations,
    Phases,
)
from emulator.facts import Mode, TaskType
from tests.emulator.conftest import MakeHarness

IMAGINE, UPSCALE, DESCRIBE = TaskType.IMAGINE, TaskType.UPSCALE, TaskType.DESCRIBE
SAMPLES = 4000


def totals(durations: Durations, n: int = SAMPLES, mode: Mode = Mode.FAST) -> list[float]:
    return [durations.draw(IMAGINE, mode).total for _ in range(n)]


def test_the_fixed_phases_are_exactly_as_configured() -> None:
    durations = Durations(EmulatorConfig())
    for task_type in TaskType:
        for mode in Mode:
            assert durations.draw(task_type, mode) == Phases(2.0, 4.0)
    assert Durations(EmulatorConfig(pending_seconds=0.05, processing_seconds=0.1)).draw(
        UPSCALE, Mode.RELAX, "4x"
    ) == Phases(0.05, 0.1)


def test_every_task_takes_exactly_task_seconds() -> None:
    durations = Durations(EmulatorConfig(task_seconds=3))
    for task_type in TaskType:
        for mode in Mode:
            phases = durations.draw(task_type, mode)
            assert phases.total == pytest.approx(3.0, abs=1e-12)
            assert phases.pending == pytest.approx(3.0 * PENDING_SHARE)


def test_time_scale_multiplies_every_source() -> None:
    assert Durations(EmulatorConfig(time_scale=0.5)).draw(IMAGINE, Mode.FAST) == Phases(1.0, 2.0)
    assert Durations(EmulatorConfig(task_seconds=60, time_scale=0.05)).draw(
        IMAGINE, Mode.FAST
    ).total == pytest.approx(3.0)
    realistic = Durations(
        EmulatorConfig(realistic_durations=True, duration_spread=0, time_scale=0.1)
    )
    assert realistic.draw(IMAGINE, Mode.FAST).total == pytest.approx(4.5)


def test_realistic_medians_follow_type_and_mode() -> None:
    durations = Durations(EmulatorConfig(realistic_durations=True, duration_spread=0))
    imagine = {mode: durations.draw(IMAGINE, mode).total for mode in Mode}
    assert imagine[Mode.TURBO] < imagine[Mode.FAST] < imagine[Mode.RELAX]
    assert 40 <= imagine[Mode.FAST] <= 60
    crop = durations.draw(UPSCALE, Mode.FAST, "2").total
    assert (
        crop
        < durations.draw(UPSCALE, Mode.FAST, "2x").total
        < durations.draw(UPSCALE, Mode.FAST, "4x").total
    )
    assert crop < imagine[Mode.FAST] and durations.draw(DESCRIBE, Mode.FAST).total < 15
    for row in MEDIAN_SECONDS.values():
        assert all(seconds > 0 for seconds in row)
    # every task type and index has a row
    assert durations.draw(TaskType.VARIATION, Mode.RELAX, "high_variation").total == 120


def test_spread_stays_within_its_bounds() -> None:
    config = EmulatorConfig(task_seconds=3, duration_spread=1.0, duration_seed=11)
    durations = Durations(config)
    low, high = durations.bounds(IMAGINE, Mode.FAST)
    assert (low, high) == pytest.approx((3 / math.e**BOUND_SIGMAS, 3 * math.e**BOUND_SIGMAS))
    drawn = totals(durations)
    assert low - 1e-9 <= min(drawn) and max(drawn) <= high + 1e-9
    # with sigma 1, 4,000 draws reach well past 2.5 sigmas on both sides: the bounds bite
    assert min(drawn) < 3 / math.e**2.5 and max(drawn) > 3 * math.e**2.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_median_is_the_configured_one(seed: int) -> None:
    drawn = totals(
        Durations(EmulatorConfig(task_seconds=3, duration_spread=0.3, duration_seed=seed))
    )
    # the sample median of 4,000 lognormal draws is within ~1% of the true one (one standard
    # error); 5% is five of them
    assert statistics.median(drawn) == pytest.approx(3.0, rel=0.05)
    # and the spread is real: the middle 80% spans about e^(±1.28·0.3) = 0.68x..1.47x
    deciles = statistics.quantiles(drawn, n=10)
    assert deciles[0] == pytest.approx(3 * math.exp(-1.2816 * 0.3), rel=0.05)
    assert deciles[-1] == pytest.approx(3 * math.exp(1.2816 * 0.3), rel=0.05)


def test_realistic_durations_spread_by_default() -> None:
    durations = Durations(EmulatorConfig(realistic_durations=True, duration_seed=5))
    assert durations.spread == REALISTIC_SPREAD
    drawn = totals(durations, mode=Mode.RELAX)
    assert statistics.median(drawn) == pytest.approx(120, rel=0.05)
    assert len(set(drawn)) > 0.99 * SAMPLES  # only draws cut at a bound repeat


def test_a_seed_gives_the_same_draws_and_another_seed_others() -> None:
    def run(seed: int | None) -> list[float]:
        config = EmulatorConfig(realistic_durations=True, duration_seed=seed)
        return totals(Durations(config), n=50)

    assert run(42) == run(42)
    assert run(42) != run(43)
    assert run(None) != run(None)  # unseeded: a different run each time


def test_invalid_duration_options_are_refused() -> None:
    for bad in (
        {"task_seconds": -1},
        {"time_scale": -0.1},
        {"duration_spread": -0.1},
        {"duration_spread": 5},
        {"task_seconds": 3, "realistic_durations": True},
    ):
        with pytest.raises(ConfigError):
            EmulatorConfig(**bad)  # type: ignore[arg-type]
    assert EmulatorConfig(task_seconds=0).is_instant
    assert EmulatorConfig(time_scale=0, realistic_durations=True).is_instant
    assert not EmulatorConfig(realistic_durations=True).is_instant
    assert not EmulatorConfig(task_seconds=3, pending_seconds=0, processing_seconds=0).is_instant


async def test_a_task_holds_its_slot_exactly_task_seconds(make_harness: MakeHarness) -> None:
    harness = await make_harness(
        task_seconds=3, accounts=(EmulatedAccountSpec(1, "pro", fast_slots=1),)
    )
    first = await harness.create("imagine", prompt="p --fast", bot_id=1)
    second = await harness.create("imagine", prompt="q --fast", bot_id=1)  # queued behind it
    harness.tick(0.29)
    assert (await harness.get(first["task_id"]))["status"] == "pending"
    harness.tick(0.02)
    assert (await harness.get(first["task_id"]))["status"] == "processing"
    harness.tick(2.68)
    assert (await harness.get(first["task_id"]))["status"] == "processing"
    harness.tick(0.02)
    assert (await harness.get(first["task_id"]))["status"] == "completed"
    assert (await harness.get(second["task_id"]))["status"] == "pending"
    harness.tick(3.0)
    assert (await harness.get(second["task_id"]))["status"] == "completed"


async def test_spread_tasks_end_at_different_times_within_bounds(make_harness: MakeHarness) -> None:
    harness = await make_harness(task_seconds=10, duration_spread=0.3, duration_seed=3)
    ids = [(await harness.create("imagine", prompt=f"p{n}"))["task_id"] for n in range(40)]
    started = harness.clock.now
    harness.tick(100)
    ends = [harness.emulator.tasks[task_id].ended_at for task_id in ids]
    took = [end - started for end in ends if end is not None]
    assert len(took) == 40
    low, high = harness.emulator.durations.bounds(IMAGINE, Mode.RELAX)
    assert all(low - 1e-6 <= t <= high + 1e-6 for t in took)
    assert len({round(t, 6) for t in took}) == 40
    assert 7 < statistics.median(took) < 13


async def test_config_patch_sets_durations(make_harness: MakeHarness) -> None:
    harness = await make_harness()
    answer = await harness.client.patch(
        "/_emulator/config",
        json={"task_seconds": 3, "time_scale": 2, "duration_spread": 0.2, "duration_seed": 9},
    )
    shown = answer.json()["config"]
    assert (shown["task_seconds"], shown["time_scale"], shown["duration_spread"]) == (3, 2, 0.2)
    assert shown["duration_seed"] == 9 and shown["instant"] is False
    assert harness.emulator.durations.median(IMAGINE, Mode.FAST).total == pytest.approx(6)
    back = await harness.client.patch(
        "/_emulator/config", json={"task_seconds": None, "realistic_durations": True}
    )
    assert back.json()["config"]["realistic_durations"] is True
    for bad in (
        {"realistic_durations": 1},
        {"time_scale": "fast"},
        {"duration_seed": 1.5},
        {"task_seconds": 3},  # with realistic durations on
        {"duration_spread": True},
    ):
        assert (await harness.client.patch("/_emulator/config", json=bad)).status_code == 400


def test_cli_duration_options() -> None:
    parse = cli.parser().parse_args
    exact = cli.build_config(parse(["--task-seconds", "3"]))
    assert exact.task_seconds == 3 and Durations(exact).spread == 0
    assert cli.describe_speed(exact) == "3s per task"
    spread = cli.build_config(parse(["--task-seconds", "3", "--spread", "0.2", "--seed", "7"]))
    assert (spread.duration_spread, spread.duration_seed) == (0.2, 7)
    assert cli.describe_speed(spread) == "3s per task, spread 0.2, seed 7"
    realistic = cli.build_config(parse(["--realistic", "--time-scale", "0.05"]))
    assert realistic.realistic_durations and realistic.time_scale == 0.05
    assert cli.describe_speed(realistic) == "realistic durations x 0.05, spread 0.25"
    assert cli.describe_speed(cli.build_config(parse([]))) == "2s pending + 4s processing"
    assert cli.describe_speed(cli.build_config(parse(["--instant"]))) == "instant"
    with pytest.raises(SystemExit):
        parse(["--instant", "--task-seconds", "3"])
    assert cli.main(["--spread", "-1"]) == 2
