"""Redis time per staging decision with many client keys waiting (the `redis` part).

A small saturated pool (10 accounts x 10 fast slots, every slot held), then `keys` client
keys stage `per_key` tasks each, interleaved (key 0's first, key 1's first, ...). Measured
with `INFO commandstats` windows as in `bench.decisions`:

- stage: `reserve_root` calls that find no slot and stage, with `keys` keys already waiting;
- hand-over: `settle(..., dispatch=1)` calls, each freeing a slot and dispatching one staged
  task to it in the same script (the gateway's path), with `keys` keys waiting.

When the store knows client quotas (`reserve_root(quota=...)`), a third window measures a
routed `reserve_root` with a day and a month quota against the same call without one.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

from redis.asyncio import Redis

from bench.decisions import Window, median, script_window
from bench.pools import gather_limited, new_pool
from bench.report import Report, Row
from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.model import Mode, Plan
from routing.results import Outcome, Reservation
from routing.store import PoolStore

ACCOUNTS, SLOTS = 10, 10


def _reserve(store: PoolStore, client: str, **extra: Any) -> Any:
    return partial(
        store.reserve_root,
        mode=Mode.FAST,
        cost=60,
        client_id=client,
        lease_seconds=3600,
        staged_limit=100_000,
        staged_timeout=86_400,
        **extra,
    )


async def staging_cost(
    store: PoolStore, keys: int, per_key: int, tasks: int, repeats: int
) -> dict[str, Any]:
    for bot_id in range(1, ACCOUNTS + 1):
        spec = AccountSpec(
            bot_id=bot_id, plan=Plan.PRO, fast_slots=SLOTS, relax_slots=0, fast_seconds_left=10**9
        )
        await Catalog(store).apply_account(spec)
    filler = _reserve(store, "filler")
    running = [f"run-{n}" for n in range(ACCOUNTS * SLOTS)]
    held = await gather_limited([partial(filler, task) for task in running])
    assert all(isinstance(d, Reservation) for d in held), "the pool must start full"
    waiting = [(f"key-{k:04d}", f"st-{k}-{n}") for n in range(per_key) for k in range(keys)]
    await gather_limited([partial(_reserve(store, key), task) for key, task in waiting])
    assert await store.staged_count() == keys * per_key
    stages: list[Window] = []
    made = 0

    async def stage_batch() -> None:
        nonlocal made
        made += 1
        calls = [
            partial(_reserve(store, f"key-{n % keys:04d}"), f"more-{made}-{n}")
            for n in range(tasks)
        ]
        await gather_limited(calls)

    async def settle_one() -> None:
        settlement = await store.settle(running.pop(0), Outcome.COMPLETED, dispatch=1)
        assert settlement is not None and len(settlement.dispatched) == 1
        running.extend(item.task_id for item in settlement.dispatched)

    async def hand_over() -> None:
        await gather_limited([settle_one] * tasks)

    handovers: list[Window] = []
    for _ in range(repeats):
        stages.append(await script_window(store.redis, tasks, stage_batch))
        handovers.append(await script_window(store.redis, tasks, hand_over))
    return {
        "keys": keys,
        "staged": await store.staged_count(),
        "stage_usec": round(median(stages).usec_per_call, 2),
        "handover_usec": round(median(handovers).usec_per_call, 2),
    }


async def quota_cost(store: PoolStore, tasks: int, repeats: int) -> dict[str, float] | None:
    if "quota" not in inspect.signature(store.reserve_root).parameters:
        return None
    from routing.quotas import Quota

    await Catalog(store).apply_account(AccountSpec(bot_id=1, plan=Plan.MEGA, fast_slots=1000,
                                          fast_seconds_left=10**9))  # fmt: skip
    quota = Quota(jobs_per_day=10**9, fast_seconds_per_month=10**12, timezone="Europe/Paris")
    figures: dict[str, float] = {}
    for name, extra in (("without", {}), ("with", {"quota": quota})):
        windows = []
        for r in range(repeats):
            ids = [f"{name}-{r}-{n}" for n in range(min(tasks, 900))]

            async def batch(ids: list[str] = ids, extra: dict[str, Any] = extra) -> None:
                await gather_limited([partial(_reserve(store, "q", **extra), t) for t in ids])

            windows.append(await script_window(store.redis, len(ids), batch))
            await gather_limited([partial(store.settle, t, Outcome.COMPLETED) for t in ids])
        figures[name] = round(median(windows).usec_per_call, 2)
    return figures


async def staging_part(
    redis: Redis, report: Report, *, keys: int, per_key: int, tasks: int, repeats: int
) -> None:
    async with new_pool(redis, "staging") as store:
        result = await staging_cost(store, keys, per_key, tasks, repeats)
    async with new_pool(redis, "quota") as store:
        quota = await quota_cost(store, tasks, repeats)
    report.details["staging"] = {**result, "quota_usec": quota}
    for name, label in (("stage", "reserve that stages"), ("handover", "settle + hand-over")):
        report.add(
            Row(
                part="redis",
                metric=f"{label}, {keys:,} keys waiting",
                mjgate=result[f"{name}_usec"],
                reference=None,
                value=result[f"{name}_usec"],
                unit="us",
            )
        )
    if quota is not None:
        report.add(
            Row(
                part="redis",
                metric="reserve with a day + month quota / without",
                mjgate=quota["with"],
                reference=quota["without"],
                value=quota["with"] - quota["without"],
                unit="us",
                note="extra Redis time per reserve",
            )
        )
