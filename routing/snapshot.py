"""The pool's figures for metrics, read in a bounded number of round trips at any pool size.

The scripts keep pool-wide aggregates up to date in one hash (`Keys.pool_totals`) as they
change accounts: each account contributes a pure function of its fields, and every script
applies the difference between an account's old and new contribution. Reading the totals is
one HGETALL; per-account figures are one pipeline of HMGETs.

The fast time the routing can spend (`fast_seconds_usable`) is the total less the aggregate
`flx` (fast seconds on accounts not active or set to relax), and the part pacing holds now is
`flh` (indexes.lua's standing; counted again from the fast indexes at every start,
routing.upkeep.recount_fast).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from routing import codec
from routing.errors import store_errors
from routing.keys import Keys
from routing.model import AccountState, Plan, Setting, SlotKind
from routing.storeops import StoreOp


@dataclass(frozen=True)
class AccountFigures:
    bot_id: int
    fast_seconds_left: int
    fast_in_flight: int
    relax_in_flight: int
    state: AccountState | None = None
    paced: bool = False  # has a pacing profile: the jobs-today counts below mean something
    fast_today: int = 0
    relax_today: int = 0


@dataclass(frozen=True)
class PoolSnapshot:
    """Totals over the pool (`mjgate_accounts`, `mjgate_pool_*`, `mjgate_staged_tasks`).

    `accounts` counts accounts per (plan, state, setting), zero counts left out.
    `fast_seconds_left` sums every account's unreserved fast time, whatever its state;
    `fast_seconds_usable` only the accounts fast work can go to (active, setting fast, fast
    time left: paused, cooling, disabled and draining accounts' is not), of which
    `fast_seconds_held` is on accounts pacing holds now (outside hours, in a gap, at the fast
    cap). Slot capacity and use are over active accounts only (the ones that take new root
    work).
    """

    accounts: Mapping[tuple[Plan, AccountState, Setting], int]
    fast_seconds_left: int
    slot_capacity: Mapping[SlotKind, int]
    slots_in_use: Mapping[SlotKind, int]
    relax_capable: int  # active accounts, not on basic, with relax slots
    staged: int
    per_account: tuple[AccountFigures, ...] = field(default=())
    eligible_now: int = 0  # active accounts pacing lets take new root work now
    fast_seconds_usable: int = 0
    fast_seconds_held: int = 0

    @property
    def account_count(self) -> int:
        return sum(self.accounts.values())


def from_totals(
    totals: Mapping[str, str], staged: int, in_gaps: int, capped_only: int = 0
) -> PoolSnapshot:
    """Build a snapshot (without per-account figures) from the aggregates hash. The
    aggregates count as eligible two kinds of active accounts pacing holds: `in_gaps`, those
    in a gap routing has not held yet (`ix:gap`, pacing.lua), and `capped_only`, those whose
    caps hold every class they can run though one is below its cap (`ix:capo`)."""
    accounts: dict[tuple[Plan, AccountState, Setting], int] = {}
    for name, value in totals.items():
        if name.startswith("n|") and int(value) > 0:
            _, plan, state, setting = name.split("|")
            accounts[(Plan(plan), AccountState(state), Setting(setting))] = int(value)

    def total(name: str) -> int:
        return int(totals.get(name, 0))

    return PoolSnapshot(
        accounts=accounts,
        fast_seconds_left=total("fl"),
        slot_capacity={SlotKind.FAST: total("fc"), SlotKind.RELAX: total("rc")},
        slots_in_use={SlotKind.FAST: total("fu"), SlotKind.RELAX: total("ru")},
        relax_capable=total("rcap"),
        staged=staged,
        eligible_now=sum(
            count for (_, state, _), count in accounts.items() if state is AccountState.ACTIVE
        )
        - total("held")
        - in_gaps
        - capped_only,
        fast_seconds_usable=total("fl") - total("flx"),
        fast_seconds_held=total("flh"),
    )


FIGURE_FIELDS = ("fl", "fi", "ri", "st", "tz", "nf", "nr")  # the account hash's, for `figures`


def figures(ids: Sequence[int], rows: Sequence[Sequence[Any]]) -> tuple[AccountFigures, ...]:
    """Per-account figures from one HMGET of FIGURE_FIELDS per account (gone ones skipped)."""
    return tuple(
        AccountFigures(
            bot_id,
            int(left),
            int(fast),
            int(relax),
            AccountState(state.decode() if isinstance(state, bytes) else state),
            paced=tz is not None,
            fast_today=int(nf or 0),
            relax_today=int(nr or 0),
        )
        for bot_id, (left, fast, relax, state, tz, nf, nr) in zip(ids, rows, strict=True)
        if left is not None
    )


async def read(
    redis: Redis, keys: Keys, timeout: float | None, per_account: bool, now: float
) -> PoolSnapshot:
    """The totals (one HGETALL, the staged count, the gaps running at `now`, unix seconds)
    and, with `per_account`, every account's figures (one pipeline of HMGETs): two round
    trips at most, whatever the pool's size."""
    async with store_errors(StoreOp.POOL_SNAPSHOT, timeout):
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.pool_totals())
            pipe.zcard(keys.staged_queue())
            # both by a time they end, counted from now: a member an older version left
            # behind (it doesn't know `ix:capo`) stops counting when its time has passed
            for index in ("gap", "capo"):
                pipe.zcount(keys.index(index), f"({round(now * 1000)}", "+inf")
            if per_account:
                pipe.smembers(keys.accounts())
            replies = await pipe.execute()
        totals = from_totals(
            codec.fields(replies[0]), int(replies[1]), int(replies[2]), int(replies[3])
        )
        if not per_account:
            return totals
        ids = sorted(int(item) for item in replies[-1])
        async with redis.pipeline(transaction=False) as pipe:
            for bot_id in ids:
                pipe.hmget(keys.account(bot_id), *FIGURE_FIELDS)
            rows = await pipe.execute()
    return replace(totals, per_account=figures(ids, rows))
