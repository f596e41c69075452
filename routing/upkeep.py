"""The tick: one bounded maintenance pass over the pool, run by every replica's upkeep loop.

Renewals due (a subscription month after the last, fast time restored), cooling deadlines
passed, staged tasks past their timeout, pacing changes due (a window's edge, a local
midnight, a gap's end): each is a script (`tick.lua`) handling at most TICK_LIMIT of each per
call, called again while pacing changes fill it (many windows opening at once). Then new pacing
plans for the accounts whose look-ahead ran out: their windows are computed here, in Python
with time zones (`routing.pacing.plan_args`), and stored by `pace_plan.lua`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing import codec, pacing
from routing.errors import store_errors
from routing.results import TickResult
from routing.storeops import StoreOp

if TYPE_CHECKING:
    from routing.store import PoolStore

RENEWAL_PERIOD_SECONDS = 30 * 86400  # a subscription month, as Midjourney bills: 30 days
TICK_LIMIT = 100  # renewals, wake-ups and staged timeouts handled per tick, each
PACE_ROUNDS = 20  # tick scripts per tick while pacing changes fill them (windows opening at once)


async def tick(store: PoolStore) -> TickResult:
    """One bounded maintenance pass: renewals due, cooling deadlines, staged timeouts,
    pacing changes due; then new pacing plans for accounts that used theirs up."""
    renewed, woken, expired, paced = await store.run(
        StoreOp.TICK, "tick", TICK_LIMIT, RENEWAL_PERIOD_SECONDS * 1000
    )
    for done in range(1, PACE_ROUNDS):  # many windows opening at once: more, bounded steps
        if len(paced) < TICK_LIMIT * done:
            break
        more = await store.run(StoreOp.TICK, "tick", TICK_LIMIT, RENEWAL_PERIOD_SECONDS * 1000)
        renewed, woken, expired = (
            [*renewed, *more[0]],
            [*woken, *more[1]],
            [*expired, *more[2]],
        )
        paced = [*paced, *more[3]]
    replanned = await _replan(store, TICK_LIMIT)
    return TickResult(
        renewed=tuple(int(item) for item in renewed),
        woken=tuple(int(item) for item in woken),
        expired_staged=tuple(codec.text(item) for item in expired),
        paced=tuple(sorted({int(item) for item in (*paced, *replanned)})),
    )


async def next_pacing_change(store: PoolStore) -> float | None:
    """While work is staged: the earliest time-driven pacing change of any account (unix
    seconds; `ix:pace`: a held gap's end, a window's edge, a local midnight), which may free an
    account for it. The dispatch loop wakes then, so that the change is applied and the queue
    served by the dispatch (FIFO), not by the first fresh create after it. None when nothing
    is staged or no account is paced."""
    keys = store.keys
    async with (
        store_errors(StoreOp.STAGED_COUNT, store.timeout),
        store.redis.pipeline(transaction=False) as pipe,
    ):
        pipe.exists(keys.staged_queue())
        pipe.zrange(keys.index("pace"), 0, 0, withscores=True)
        staged, first = await pipe.execute()
    if not staged or not first:
        return None
    return float(first[0][1]) / 1000


async def _replan(store: PoolStore, limit: int) -> list[int]:
    """Compute new pacing plans (routing/pacing.py: time zones) for up to `limit` accounts
    whose look-ahead ran out, and store them (pace_plan.lua)."""
    redis, keys = store.redis, store.keys
    async with store_errors(StoreOp.TICK, store.timeout):
        ids = [codec.text(item) for item in await redis.zrange(keys.index("pref"), 0, limit - 1)]
        if not ids:
            return []
        async with redis.pipeline(transaction=False) as pipe:
            for bot_id in ids:
                pipe.hmget(keys.account(int(bot_id)), "tz", "ah", "ao")
            rows = await pipe.execute()
    args = pacing.plan_args(ids, rows, round(store.clock() * 1000))
    if not args:
        return []
    done = await store.run(StoreOp.TICK, "pace_plan", *args)
    return [int(item) for item in done]


async def recount_fast(store: PoolStore) -> tuple[int, int]:
    """Count the fast-time aggregates again from the fast indexes (`recount_fast.lua`), at
    every start: the usable and the held fast seconds."""
    usable, held = await store.run(StoreOp.RECOUNT_FAST, "recount_fast")
    return int(usable), int(held)
