"""Redis time per routing decision, from `INFO commandstats`.

`cmdstat_fcall` (usec / calls; `cmdstat_evalsha` and `cmdstat_eval` added in, for scripts
called that way) is Redis's own time in the scripts, the commands they run included: no
network, no client. Commandstats aggregates every call, so each window runs one script only:
`CONFIG RESETSTAT`, then a batch of reserve_root calls (or settle calls), then INFO. The
windows are repeated and the median is the figure. On a shared Redis other clients' script
calls land in the window too: the call count is checked against the bench's, and a window
with more than 1% foreign calls is measured again.

Each pool is measured twice per repeat, alternately: with the scripts called as Redis
Functions (the default, the figure) and as EVALSHA scripts (the reference: what the
library definitions created at every call cost), on the same accounts.

Redis 7 also counts the commands a script runs under their own names: their sum is the time
in Redis commands proper, and the rest of the script's time is Lua and `redis.call`
overhead (argument and reply conversion, the script's setup). Both are in the details.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.asyncio import Redis

from bench.decisionrows import MAX_FOREIGN_SHARE, rows
from bench.pools import gather_limited, load_accounts, new_pool, task_id
from bench.report import Report
from routing.catalog import Catalog
from routing.model import Mode, Strategy
from routing.pacing import Pacing
from routing.pipe import Pipe
from routing.results import Outcome, Reservation
from routing.scripts import pool_script
from routing.store import PoolStore

PACED_STEP_SECONDS = 0.1  # simulated time per script call in the paced pools
ATTEMPTS = 3
SCRIPT_CALLS = ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval")


@dataclass(frozen=True)
class Window:
    calls: int
    foreign_calls: int
    usec_per_call: float
    commands_usec_per_call: dict[str, float]  # the commands the script ran, per script call

    @property
    def script_usec_per_call(self) -> float:
        return self.usec_per_call - sum(self.commands_usec_per_call.values())


async def script_window(
    redis: Redis,
    expected: int,
    work: Callable[[], Awaitable[None]],
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> Window:
    """Redis time per script call over `work`, which makes `expected` calls; `prepare` runs
    before each attempt, outside the window."""
    best: Window | None = None
    for _ in range(ATTEMPTS):
        if prepare is not None:
            await prepare()
        await redis.config_resetstat()
        await work()
        stats: dict[str, Any] = await redis.info("commandstats")
        entries = [stats.get(name, {}) for name in SCRIPT_CALLS]
        calls = max(1, sum(int(entry.get("calls", 0)) for entry in entries))
        commands = {
            name.removeprefix("cmdstat_"): round(float(value["usec"]) / calls, 2)
            for name, value in stats.items()
            if name not in (*SCRIPT_CALLS, "cmdstat_config|resetstat")
            and float(value.get("usec", 0)) / calls >= 0.05
        }
        usec = sum(float(entry.get("usec", 0)) for entry in entries) / calls
        window = Window(calls, max(0, calls - expected), usec, commands)
        if best is None or window.foreign_calls < best.foreign_calls:
            best = window
        if window.foreign_calls <= expected * MAX_FOREIGN_SHARE:
            break
    assert best is not None
    return best


def median(windows: Sequence[Window]) -> Window:
    return sorted(windows, key=lambda w: w.usec_per_call)[len(windows) // 2]


def _summary(name: str, windows: Sequence[Window]) -> dict[str, Any]:
    chosen = median(windows)
    return {
        f"{name}_usec": round(chosen.usec_per_call, 2),
        f"{name}_windows_usec": [round(w.usec_per_call, 2) for w in windows],
        f"{name}_commands_usec": chosen.commands_usec_per_call,
        f"{name}_script_usec": round(chosen.script_usec_per_call, 2),
        f"{name}_foreign_calls": chosen.foreign_calls,
    }


async def decision_cost(
    store: PoolStore, count: int, tasks: int, repeats: int, pacing: Pacing | None = None
) -> dict[str, Any]:
    """Load `count` accounts (each with `pacing`), then `repeats` times: reserve `tasks`
    tasks in one window and settle them in another. At most 2 x `tasks` reservations are
    held at once. Each window is repeated with the scripts called as EVALSHA (`evalsha_*`)."""
    load_seconds = await load_accounts(store, count, pacing)
    functions = store
    as_evalsha = PoolStore(
        store.redis, store.keys, clock=store.clock, pipe=Pipe.of(store.redis, functions=False)
    )
    batches: list[list[str]] = []
    made = 0

    def reserve(task: str) -> Awaitable[Reservation | object]:
        return store.reserve_root(
            task,
            mode=Mode.FAST,
            cost=60,
            client_id="bench",
            lease_seconds=3600,
            staged_limit=50,
            staged_timeout=900,
        )

    async def reserve_batch() -> None:
        nonlocal made
        made += 1
        ids = [task_id(f"task-{made}-{i}") for i in range(tasks)]
        batches.append(ids)
        decisions = await gather_limited([partial(reserve, task) for task in ids])
        staged = sum(1 for d in decisions if not isinstance(d, Reservation))
        if staged:
            raise RuntimeError(f"{staged} of {tasks} reservations staged: the pool is too small")

    async def settle_batch() -> None:
        ids = batches.pop(0)
        await gather_limited([partial(store.settle, task, Outcome.COMPLETED) for task in ids])

    async def one_batch_reserved() -> None:
        if not batches:
            await reserve_batch()

    await reserve_batch()  # warm-up: scripts, indexes, connections (not measured)
    await settle_batch()
    reserves, settles, eval_reserves, eval_settles = [], [], [], []
    for _ in range(repeats):
        reserves.append(await script_window(store.redis, tasks, reserve_batch))
        settles.append(await script_window(store.redis, tasks, settle_batch, one_batch_reserved))
        store = as_evalsha
        eval_reserves.append(await script_window(store.redis, tasks, reserve_batch))
        eval_settles.append(
            await script_window(store.redis, tasks, settle_batch, one_batch_reserved)
        )
        store = functions
    while batches:
        await settle_batch()
    await as_evalsha.pipe.aclose()
    return {
        "accounts": count,
        "pacing": pacing is not None,
        "tasks": tasks,
        "load_seconds": round(load_seconds, 3),
        "accounts_per_second": round(count / load_seconds),
        **_summary("reserve", reserves),
        **_summary("settle", settles),
        **_summary("evalsha_reserve", eval_reserves),
        **_summary("evalsha_settle", eval_settles),
    }


class SteppingClock:
    """Unix seconds that move on by `step` at every reading: each script call sees time
    pass, so the gaps the paced bench accounts start end before their next decision."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def paced_profile(start: float, *, gap: float = 0.04) -> Pacing:
    """Pacing on every bench account that never holds work back yet runs every rule's code:
    a whole-hour time zone where `start` is between 01:00 and 02:00 local time, one active
    window 00:00-22:00 (the bench's stepped time, a few hours, stays inside it, and never
    reaches local midnight: every account's caps would reset at once, a change per account
    applied by the decisions then), caps too high to reach, and a gap of `gap` to 2 x `gap`
    seconds that every reservation starts (40-80 ms: over before the next decision)."""
    zone = bench_zone(start)
    return Pacing(timezone=zone, active_hours=("00:00-22:00",), fast_cap=1_000_000,
                  relax_cap=1_000_000, min_gap_seconds=gap, gap_jitter_seconds=gap)  # fmt: skip


def bench_zone(start: float) -> str:
    """The `Etc/GMT` zone (its sign reversed: Etc/GMT-9 is UTC+9) where `start` is 01:xx."""
    hour = datetime.fromtimestamp(start, UTC).hour
    offset = (1 - hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def decisions_part(
    redis: Redis, report: Report, *, sizes: Sequence[int], tasks: int, repeats: int
) -> None:
    results = []
    for count in sizes:
        async with new_pool(redis, "redis") as store:
            results.append(await decision_cost(store, count, tasks, repeats))
    paced = []
    # pacing on every account: the smallest and largest, the largest with gaps 0, and the
    # largest where every decision meets an account in its gap: most_fast_left keeps the
    # account it just used first, and a gap of 1-2 s outlasts the next 10 decisions
    variants = (
        (sizes[0], 0.04, Strategy.LEAST_BUSY),
        (sizes[-1], 0.04, Strategy.LEAST_BUSY),
        (sizes[-1], 0.0, Strategy.LEAST_BUSY),
        (sizes[-1], 1.0, Strategy.MOST_FAST_LEFT),
    )
    for count, gap, strategy in variants:
        clock = SteppingClock(time.time(), PACED_STEP_SECONDS)
        profile = paced_profile(clock.now, gap=gap)
        async with new_pool(redis, "redis", clock=clock) as store:
            await Catalog(store).set_strategy(strategy)
            paced.append(await decision_cost(store, count, tasks, repeats, profile))
    met = paced.pop()
    gapless = paced.pop()
    report.details["redis"] = {
        "reserve_sha": pool_script("reserve_root").sha,
        "settle_sha": pool_script("settle").sha,
        "pools": results,
        "paced_pools": paced,
        "paced_gaps_0": gapless,
        "paced_gaps_met": met,
    }
    rows(report, results, paced, gapless, met)
