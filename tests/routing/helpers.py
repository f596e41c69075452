"""Helpers for the pool store's tests: a clock the test moves, short calls for the rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

import pytest

from routing.accounts import AccountSpec, AccountStatus
from routing.catalog import Catalog
from routing.model import AccountState, Mode, Plan, Setting, SlotKind
from routing.results import Reservation, Staged
from routing.snapshot import AccountFigures, PoolSnapshot
from routing.store import PoolStore

START = 1_750_000_000.0  # unix seconds: 2025-06-15


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def add(store: PoolStore, bot_id: int, plan: Plan = Plan.PRO, **fields: Any) -> None:
    await Catalog(store).apply_account(AccountSpec(bot_id=bot_id, plan=plan, **fields))


async def root(
    store: PoolStore, task_id: str, mode: Mode = Mode.FAST, cost: int = 60, **options: Any
) -> Reservation | Staged:
    options = {
        "client_id": "client",
        "lease_seconds": 60.0,
        "staged_limit": 50,
        "staged_timeout": 300.0,
        **options,
    }
    return await store.reserve_root(task_id, mode, cost, **options)


async def child(
    store: PoolStore,
    task_id: str,
    parent: int,
    mode: Mode = Mode.FAST,
    cost: int = 60,
    **options: Any,
) -> Reservation | Staged:
    options = {
        "client_id": "client",
        "lease_seconds": 60.0,
        "staged_limit": 50,
        "staged_timeout": 300.0,
        **options,
    }
    return await store.reserve_child(task_id, parent, mode, cost, **options)


def reserved(result: Reservation | Staged) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


def staged(result: Reservation | Staged) -> Staged:
    assert isinstance(result, Staged), result
    return result


def totals_from_accounts(
    accounts: list[AccountStatus], staged: int, gaps_held: Collection[int] = ()
) -> PoolSnapshot:
    """The pool snapshot recomputed the slow way, to check the scripts' running totals.
    `gaps_held`: the accounts routing has met in their gap (their fast time counts as held;
    in a gap not met yet, as usable: pacing.lua)."""
    counts: Counter[tuple[Plan, AccountState, Setting]] = Counter()
    capacity: Counter[SlotKind] = Counter({SlotKind.FAST: 0, SlotKind.RELAX: 0})
    in_use: Counter[SlotKind] = Counter({SlotKind.FAST: 0, SlotKind.RELAX: 0})
    relax_capable = 0
    for a in accounts:
        counts[(a.plan, a.state, a.setting)] += 1
        if a.state is AccountState.ACTIVE:
            capacity[SlotKind.FAST] += a.fast_slots
            capacity[SlotKind.RELAX] += a.relax_slots
            in_use[SlotKind.FAST] += a.fast_in_flight
            in_use[SlotKind.RELAX] += a.relax_in_flight
            relax_capable += a.plan is not Plan.BASIC and a.relax_slots > 0
    return PoolSnapshot(
        accounts=dict(counts),
        fast_seconds_left=sum(a.fast_seconds_left for a in accounts),
        slot_capacity=dict(capacity),
        slots_in_use=dict(in_use),
        relax_capable=relax_capable,
        staged=staged,
        per_account=tuple(
            AccountFigures(
                a.bot_id,
                a.fast_seconds_left,
                a.fast_in_flight,
                a.relax_in_flight,
                a.state,
                paced=a.pace is not None,
                fast_today=a.pace.fast_today if a.pace else 0,
                relax_today=a.pace.relax_today if a.pace else 0,
            )
            for a in accounts
        ),
        eligible_now=sum(
            1
            for a in accounts
            if a.state is AccountState.ACTIVE
            and (a.pace is None or not a.pace.held)
            and not _caps_hold(a)
        ),
        fast_seconds_usable=sum(a.fast_seconds_left for a in accounts if _takes_fast(a)),
        fast_seconds_held=sum(
            a.fast_seconds_left
            for a in accounts
            if _takes_fast(a) and _fast_held(a, a.bot_id in gaps_held)
        ),
    )


def _takes_fast(a: AccountStatus) -> bool:
    """Fast work can go to the account (now, or when pacing lets it)."""
    return a.state is AccountState.ACTIVE and a.setting is Setting.FAST and a.fast_seconds_left > 0


def _caps_hold(a: AccountStatus) -> bool:
    """Daily caps hold every root task the account could take: one class at its cap, the
    other one it can't run (a Basic plan has no relax; setting relax or no fast time left
    or reserved: its fast work runs relax). Both at their caps is `pace.held` already."""
    if a.pace is None or a.pacing is None:
        return False
    fast_cap, relax_cap = a.pacing.fast_cap, a.pacing.relax_cap
    capped_fast = fast_cap is not None and a.pace.fast_today >= fast_cap
    capped_relax = relax_cap is not None and a.pace.relax_today >= relax_cap
    runs_fast = a.setting is Setting.FAST and a.fast_seconds_left + a.fast_seconds_reserved > 0
    runs_relax = a.plan is not Plan.BASIC and a.relax_slots > 0
    if capped_fast and not capped_relax:
        return not runs_relax
    if capped_relax and not capped_fast:
        return not runs_fast
    return False


def _fast_held(a: AccountStatus, gap_held: bool) -> bool:
    """Pacing holds new fast root work off the account now (as routing knows it)."""
    if a.pace is None:
        return False
    cap = a.pacing.fast_cap if a.pacing is not None else None
    capped = cap is not None and a.pace.fast_today >= cap
    return a.pace.phase != "active" or gap_held or capped


async def needs_functions(redis: Any) -> None:
    """Skip the test on a server without Redis Functions (before 7.0: the embedded 6.2)."""
    info = await redis.info("server")
    nodes = [info] if "redis_version" in info else list(info.values())
    if any(int(str(node["redis_version"]).split(".")[0]) < 7 for node in nodes):
        pytest.skip("needs Redis Functions (Redis 7+)")
