"""PoolStore: the hot path's atomic decisions over the pool in Redis (Lua, by SHA).

Every decision (reserve, settle, dispatch, leases, the tick, and the state changes GoAPI's
signals cause) is one Lua script from `routing/lua/`, so N replicas under any load never put
more tasks on an account than it has slots, nor spend fast time it doesn't have. Selection
reads sorted sets of eligible accounts that every script keeps up to date: a decision is
O(log N) in the pool's size, never a scan (docs/routing.md). What the pool *is* (accounts,
strategy, the pool file, the pacing default, the snapshot) is `routing.catalog.Catalog`'s.

Time: scripts never read Redis' clock. The store passes `now` (unix milliseconds) from its
injected `clock` (default `time.time`) as ARGV[2] of every script, so tests move time by
moving the clock, and every deadline (leases, staged timeouts, cooling, renewals) is measured
on one clock. Replicas are assumed NTP-synchronised; a skew of a few seconds only shifts
deadlines by that much.

Costs come from the caller (fast seconds, already x2 for turbo); the store never computes
them. Every Redis error becomes `StoreError(op, message)` (`routing.errors.store_errors`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis

from routing import codec, quotas, upkeep
from routing.errors import AccountNotFoundError, store_errors, translated
from routing.keys import Keys
from routing.model import AccountState, Mode
from routing.pipe import Pipe
from routing.quotas import Quota
from routing.results import (
    Dropped,
    LeaseClaim,
    Outcome,
    Reservation,
    Settlement,
    Staged,
    TickResult,
    leased,
)
from routing.scripts import Scripts
from routing.storeops import StoreOp

Clock = Callable[[], float]

DISPATCH_WINDOW = 32  # staged tasks decided per dispatch at most (keys in fair-queue order)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


class PoolStore:
    """Scripts run on `pipe` (the hot path; one is opened to `redis`'s server if none is
    given, and closed by `aclose`); reads that are not decisions use `redis`."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        clock: Clock = time.time,
        timeout: float | None = None,
        pipe: Pipe | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.timeout = timeout
        self._own_pipe = pipe is None
        self.pipe = pipe or Pipe.of(redis)
        self._scripts = Scripts(self.pipe, keys)

    async def aclose(self) -> None:
        if self._own_pipe:
            await self.pipe.aclose()

    def run(self, op: StoreOp, script: str, *args: str | int) -> Coroutine[Any, Any, Any]:
        """Run `script`: sent when called (so a caller can queue it behind another command
        in the same round trip), its reply when awaited."""
        return self._reply(op, self._scripts.run(script, ms(self.clock()), *args))

    async def _reply(self, op: StoreOp, reply: Awaitable[Any]) -> Any:
        return await translated(op, reply, self.timeout)

    async def load_scripts(self) -> None:
        """Register every script (SCRIPT LOAD); calls re-register after SCRIPT FLUSH."""
        async with store_errors(StoreOp.LOAD_SCRIPTS, self.timeout):
            await self._scripts.load()

    async def set_state(
        self, bot_id: int, state: AccountState, *, until: float | None = None, reason: str = ""
    ) -> None:
        """Put an account in `state`. Cooling needs `until` (unix seconds): tick makes the
        account active again then."""
        if state is AccountState.COOLING and until is None:
            raise ValueError("cooling needs a deadline (until)")
        deadline = "" if until is None or state is not AccountState.COOLING else ms(until)
        reply = await self.run(
            StoreOp.SET_STATE, "set_state", bot_id, state.value, deadline, reason
        )
        if codec.text(reply[0]) == "E":
            raise AccountNotFoundError(bot_id)

    async def set_fast_time(self, bot_id: int, seconds: int, *, reason: str = "") -> None:
        """Set the fast time Midjourney reports for the account (in-flight work included).
        0 switches its setting to relax; more restores the declared setting."""
        reply = await self.run(
            StoreOp.SET_FAST_TIME, "set_fast_time", bot_id, max(0, seconds), reason
        )
        if codec.text(reply[0]) == "E":
            raise AccountNotFoundError(bot_id)

    # -- decisions --------------------------------------------------------------------------
    async def reserve_root(
        self,
        task_id: str,
        mode: Mode,
        cost: int,
        *,
        client_id: str,
        lease_seconds: float,
        staged_limit: int,
        staged_timeout: float,
        exclude: Sequence[int] = (),
        tags: Sequence[str] = (),
        weight: int = 1,
        pin: int | None = None,
        quota: Quota | None = None,
    ) -> Reservation | Staged:
        """Route a root task (docs/routing.md, 'Root tasks'): a reservation, or the task
        staged when every candidate is busy. `cost`: fast seconds in `mode` (x2 for turbo;
        ignored if the task runs relax). `exclude`: accounts to skip (a retry after an
        upstream failure); they count as absent, also for NoRelaxCapableAccountError.
        `tags`: a tag-limited client key's tags; only accounts carrying one of them count
        (the same rules, decided over those accounts: O(their number)). `weight`: the key's
        share of staged work. `pin`: run only on this account (staged while it is busy;
        PinnedAccountUnavailableError when it never can). `quota`: the key's limits, checked
        and counted in the same script (QuotaExceededError)."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        until = self.clock() + lease_seconds  # the script's clock is read a moment later
        reply = await self.run(
            StoreOp.RESERVE_ROOT,
            "reserve_root",
            task_id,
            mode.value,
            cost,
            client_id,
            ms(lease_seconds),
            staged_limit,
            ms(staged_timeout),
            ",".join(str(bot_id) for bot_id in exclude),
            json.dumps(sorted(set(tags))) if tags else "",
            weight,
            "" if pin is None else pin,
            quotas.terms(quota, self.clock()),
        )
        return leased(codec.decision(StoreOp.RESERVE_ROOT, task_id, reply, pin or 0), until)

    async def reserve_child(
        self,
        task_id: str,
        parent_bot_id: int,
        parent_mode: Mode,
        cost: int,
        *,
        client_id: str,
        lease_seconds: float,
        staged_limit: int,
        staged_timeout: float,
        weight: int = 1,
        quota: Quota | None = None,
    ) -> Reservation | Staged:
        """Run a child task on its parent's account (`cost`: its fast seconds in
        `parent_mode`, ignored if it runs relax), or stage it while that account is busy or
        paused; ParentAccountUnavailableError if the account is gone, disabled, or would have
        to run relax on basic. `weight` and `quota` as for `reserve_root`."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        until = self.clock() + lease_seconds
        reply = await self.run(
            StoreOp.RESERVE_CHILD,
            "reserve_child",
            task_id,
            parent_bot_id,
            parent_mode.value,
            cost,
            client_id,
            ms(lease_seconds),
            staged_limit,
            ms(staged_timeout),
            weight,
            quotas.terms(quota, self.clock()),
        )
        return leased(codec.decision(StoreOp.RESERVE_CHILD, task_id, reply, parent_bot_id), until)

    def settle(
        self,
        task_id: str,
        outcome: Outcome,
        *,
        dispatch: int = 0,
        lease_seconds: float = 0.0,
    ) -> Coroutine[Any, Any, Settlement | None]:
        """End a reservation: None if there was none (never made, or settled already).
        `dispatch` > 0: in the same script, hand the freed slot to up to that many staged
        tasks that can run now (as `dispatch_staged` would, `lease_seconds` for entries with
        none), returned in `Settlement.dispatched`: no fresh request can take the slot first.
        Sent when called: `records.save_unless_terminal(r)` then `settle(...)` share a round
        trip and run in that order. A staged task handed the slot is leased for
        `lease_seconds` (or the length it was staged with: the same setting, unless replicas
        differ)."""
        until = self.clock() + lease_seconds
        reply = self.run(
            StoreOp.SETTLE,
            "settle",
            task_id,
            outcome.value,
            dispatch,
            ms(lease_seconds),
            DISPATCH_WINDOW,
        )
        return self._settlement(task_id, reply, until)

    @staticmethod
    async def _settlement(task_id: str, pending: Awaitable[Any], until: float) -> Settlement | None:
        settlement = codec.settlement(task_id, await pending)
        if settlement is None or not settlement.dispatched:
            return settlement
        dispatched = tuple(leased(d, until) for d in settlement.dispatched)
        return replace(settlement, dispatched=dispatched)

    async def extend_lease(
        self, task_id: str, seconds: float, *, to_send: bool = False, claim: str = ""
    ) -> bool:
        """Lease until now + `seconds`; False if the task holds no reservation. `to_send`:
        just before the upstream call, marking the task sent; False too when it was marked
        already or a reconciler claimed it (unless `claim` is that claim)."""
        reply = await self.run(
            StoreOp.EXTEND_LEASE, "extend_lease", task_id, ms(seconds), int(to_send), claim
        )
        return bool(reply)

    async def claim_expired_leases(self, limit: int, claim_seconds: float) -> list[LeaseClaim]:
        """Up to `limit` reservations whose lease ran out; each is leased to the caller for
        `claim_seconds` so no other replica claims it meanwhile."""
        reply = await self.run(
            StoreOp.CLAIM_EXPIRED_LEASES, "claim_leases", limit, ms(claim_seconds)
        )
        return [codec.lease_claim(item) for item in reply]

    async def dispatch_staged(
        self, limit: int, lease_seconds: float
    ) -> list[Reservation | Dropped]:
        """Reserve up to `limit` staged tasks that can run now (FIFO within a key, keys by
        weighted fair queueing; at most DISPATCH_WINDOW decided); each is returned to
        exactly one caller, with `staged=True`. A task
        keeps the lease length it was staged with; `lease_seconds` serves when it has none.
        Staged children whose parent's account can never take them are dropped from the
        queue and returned as `Dropped` (to exactly one caller too), beside the limit."""
        until = self.clock() + lease_seconds
        reply = await self.run(
            StoreOp.DISPATCH_STAGED, "dispatch_staged", limit, ms(lease_seconds), DISPATCH_WINDOW
        )
        return [leased(codec.dispatched(item), until) for item in reply]

    async def restage_key(
        self, client_id: str, *, weight: int, tags: Sequence[str], max_in_flight: int | None
    ) -> int:
        """A key's policy changed: its staged tasks take its new weight, tags and limit of
        tasks in flight. Returns how many staged tasks it changed."""
        terms = json.dumps(sorted(set(tags))) if tags else ""
        limit = "" if max_in_flight is None else max_in_flight
        reply = await self.run(StoreOp.RESTAGE_KEY, "restage_key", client_id, weight, terms, limit)
        return int(reply)

    async def run_relax(self, task_id: str) -> bool:
        """The upstream ran a fast or turbo reservation's task relax: see run_relax.lua."""
        return bool(await self.run(StoreOp.RUN_RELAX, "run_relax", task_id))

    async def cancel_staged(self, task_id: str) -> bool:
        return bool(await self.run(StoreOp.CANCEL_STAGED, "cancel_staged", task_id))

    async def staged_count(self) -> int:
        async with store_errors(StoreOp.STAGED_COUNT, self.timeout):
            return int(await self.redis.zcard(self.keys.staged_queue()))

    async def tick(self) -> TickResult:
        """One bounded maintenance pass (`routing.upkeep.tick`)."""
        return await upkeep.tick(self)

    async def next_pacing_change(self) -> float | None:
        return await upkeep.next_pacing_change(self)
