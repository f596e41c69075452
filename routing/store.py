"""PoolStore: the pool's state in Redis and the atomic decisions over it (Lua, by SHA).

Every decision (reserve, settle, dispatch, ...) is one Lua script from `routing/lua/`, so N
replicas under any load never put more tasks on an account than it has slots, nor spend fast
time it doesn't have. Selection reads sorted sets of eligible accounts that every script keeps
up to date: a decision is O(log N) in the pool's size, never a scan (docs/routing.md).

Time: scripts never read Redis' clock. The store passes `now` (unix milliseconds) from its
injected `clock` (default `time.time`) as ARGV[2] of every script, so tests move time by
moving the clock, and every deadline (leases, staged timeouts, cooling, renewals) is measured
on one clock. Replicas are assumed NTP-synchronised; a skew of a few seconds only shifts
deadlines by that much.

Costs come from the caller (fast seconds, already x2 for turbo); the store never computes
them. Every Redis error becomes `StoreError(op, message)` here (`raise ... from exc`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from routing import codec, pacing, poolsync, quotas
from routing.accounts import AccountSpec, AccountStatus
from routing.errors import AccountBusyError, AccountNotFoundError, StoreError
from routing.keys import Keys
from routing.model import PLANS, AccountState, Mode, Strategy
from routing.pipe import Pipe
from routing.poolfile import MAX_SLOTS, MAX_WEIGHT, PoolChange, PoolFile
from routing.quotas import Quota
from routing.results import (
    Dropped,
    LeaseClaim,
    Outcome,
    Reservation,
    Settlement,
    Staged,
    TickResult,
)
from routing.scripts import Scripts
from routing.snapshot import AccountFigures, PoolSnapshot, from_totals

Clock = Callable[[], float]

RENEWAL_PERIOD_SECONDS = 30 * 86400  # a subscription month, as Midjourney bills: 30 days
DISPATCH_WINDOW = 32  # staged tasks decided per dispatch at most (keys in fair-queue order)
TICK_LIMIT = 100  # renewals, wake-ups and staged timeouts handled per tick, each
PACE_ROUNDS = 20  # tick scripts per tick while pacing changes fill them (windows opening at once)
RESCORE_BATCH = 500  # accounts rescored per script call after a strategy change


@asynccontextmanager
async def _errors(op: str, timeout: float | None) -> AsyncIterator[None]:
    """Redis errors become StoreError; so does no answer within `timeout` seconds when the
    store was given a deadline (the service leaves it to the client's socket timeout, which
    costs nothing extra per call; tests and tools may set one)."""
    try:
        if timeout is None:
            yield
        else:
            async with asyncio.timeout(timeout):
                yield
    except RedisError as exc:
        raise StoreError(op, str(exc) or type(exc).__name__) from exc
    except TimeoutError as exc:
        raise StoreError(op, f"no answer within {timeout} s") from exc


def _ms(seconds: float) -> int:
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

    def _run(self, op: str, script: str, *args: str | int) -> Coroutine[Any, Any, Any]:
        """Run `script`: sent when called (so a caller can queue it behind another command
        in the same round trip), its reply when awaited."""
        return self._reply(op, self._scripts.run(script, _ms(self.clock()), *args))

    async def _reply(self, op: str, reply: Awaitable[Any]) -> Any:
        try:
            if self.timeout is None:
                return await reply
            async with asyncio.timeout(self.timeout):
                return await reply
        except RedisError as exc:
            raise StoreError(op, str(exc) or type(exc).__name__) from exc
        except TimeoutError as exc:
            raise StoreError(op, f"no answer within {self.timeout} s") from exc

    async def load_scripts(self) -> None:
        """Register every script (SCRIPT LOAD); calls re-register after SCRIPT FLUSH."""
        async with _errors("load_scripts", self.timeout):
            await self._scripts.load()

    # -- accounts ---------------------------------------------------------------------------
    async def apply_account(self, spec: AccountSpec) -> str:
        """Create or update an account's definition; returns 'created', 'updated' or
        'unchanged'. Live counters are kept. fast time, setting and state are applied only
        when the declared value differs from the last declared one (re-applying a file
        restores nothing consumed since)."""
        action, _ = await self.apply_account_diff(spec)
        return action

    async def apply_account_diff(
        self, spec: AccountSpec, *, dry_run: bool = False
    ) -> tuple[str, tuple[str, ...]]:
        """`apply_account`, also naming the fields that changed; `dry_run` writes nothing."""
        if spec.state is AccountState.COOLING:
            raise ValueError("cooling needs a deadline: use set_state")
        if not 0 <= spec.effective_fast_slots <= MAX_SLOTS:
            raise ValueError(f"fast_slots must be from 0 to {MAX_SLOTS}")
        if not 0 <= spec.effective_relax_slots <= MAX_SLOTS:
            raise ValueError(f"relax_slots must be from 0 to {MAX_SLOTS}")
        if not 1 <= spec.weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be from 1 to {MAX_WEIGHT}")
        reply = await self._run(
            "apply_account",
            "apply_account",
            spec.bot_id,
            spec.name,
            spec.plan.value,
            spec.setting.value,
            max(0, spec.effective_fast_seconds),
            "" if spec.renews_at is None else _ms(spec.renews_at),
            spec.effective_fast_slots,
            spec.effective_relax_slots,
            spec.weight,
            json.dumps(list(spec.tags), separators=(",", ":")),
            spec.state.value,
            PLANS[spec.plan].fast_seconds_per_month,
            int(dry_run),
            pacing.profile_json(spec.pacing, _ms(self.clock())),
        )
        return codec.text(reply[0]), tuple(codec.text(item) for item in reply[1:])

    async def get_account(self, bot_id: int) -> AccountStatus | None:
        async with (
            _errors("get_account", self.timeout),
            self.redis.pipeline(transaction=False) as pipe,
        ):
            pipe.hgetall(self.keys.account(bot_id))
            pipe.lrange(self.keys.account_history(bot_id), 0, -1)
            raw, history = await pipe.execute()
        return codec.account_status(bot_id, codec.fields(raw), history) if raw else None

    async def list_accounts(self) -> list[AccountStatus]:
        """Every account, by bot_id, without history (admin use: reads the whole pool)."""
        async with _errors("list_accounts", self.timeout):
            ids = sorted(int(item) for item in await self.redis.smembers(self.keys.accounts()))
            async with self.redis.pipeline(transaction=False) as pipe:
                for bot_id in ids:
                    pipe.hgetall(self.keys.account(bot_id))
                raws = await pipe.execute()
        return [
            codec.account_status(bot_id, codec.fields(raw))
            for bot_id, raw in zip(ids, raws, strict=True)
            if raw
        ]

    async def remove_account(self, bot_id: int, *, force: bool = False) -> None:
        """Remove an account; AccountBusyError while it has tasks in flight, unless `force`
        (their reservations still settle later, touching nothing but themselves)."""
        reply = await self._run("remove_account", "remove_account", bot_id, int(force))
        if codec.text(reply[0]) == "E":
            if codec.text(reply[1]) == "busy":
                raise AccountBusyError(bot_id, int(reply[2]))
            raise AccountNotFoundError(bot_id)

    async def set_state(
        self, bot_id: int, state: AccountState, *, until: float | None = None, reason: str = ""
    ) -> AccountStatus:
        """Put an account in `state`. Cooling needs `until` (unix seconds): tick makes the
        account active again then."""
        if state is AccountState.COOLING and until is None:
            raise ValueError("cooling needs a deadline (until)")
        deadline = "" if until is None or state is not AccountState.COOLING else _ms(until)
        reply = await self._run("set_state", "set_state", bot_id, state.value, deadline, reason)
        if codec.text(reply[0]) == "E":
            raise AccountNotFoundError(bot_id)
        status = await self.get_account(bot_id)
        if status is None:  # removed in between
            raise AccountNotFoundError(bot_id)
        return status

    async def set_fast_time(self, bot_id: int, seconds: int, *, reason: str = "") -> None:
        """Set the fast time Midjourney reports for the account (in-flight work included).
        0 switches its setting to relax; more restores the declared setting."""
        reply = await self._run("set_fast_time", "set_fast_time", bot_id, max(0, seconds), reason)
        if codec.text(reply[0]) == "E":
            raise AccountNotFoundError(bot_id)

    async def get_strategy(self) -> Strategy:
        async with _errors("get_strategy", self.timeout):
            value = await self.redis.hget(self.keys.pool_meta(), "strategy")
        return Strategy(codec.text(value)) if value else Strategy.LEAST_BUSY

    async def set_strategy(self, strategy: Strategy) -> None:
        """Switch the pool's strategy and rescore every account, in batches (an admin
        operation: O(N), but never one long script). Decisions made meanwhile are still
        correct; only their order among eligible accounts may follow either strategy."""
        async with _errors("set_strategy", self.timeout):
            await self.redis.hset(self.keys.pool_meta(), "strategy", strategy.value)
            batch: list[str] = []
            async for member in self.redis.sscan_iter(self.keys.accounts(), count=RESCORE_BATCH):
                batch.append(codec.text(member))
                if len(batch) >= RESCORE_BATCH:
                    await self._run("set_strategy", "rescore", *batch)
                    batch = []
            if batch:
                await self._run("set_strategy", "rescore", *batch)

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
        """Route a root task (DESIGN.md section 2, rules 1-3): a reservation, or the task
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
        reply = await self._run(
            "reserve_root",
            "reserve_root",
            task_id,
            mode.value,
            cost,
            client_id,
            _ms(lease_seconds),
            staged_limit,
            _ms(staged_timeout),
            ",".join(str(bot_id) for bot_id in exclude),
            json.dumps(sorted(set(tags))) if tags else "",
            weight,
            "" if pin is None else pin,
            quotas.terms(quota, self.clock()),
        )
        return codec.decision("reserve_root", task_id, reply, pin or 0)

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
        reply = await self._run(
            "reserve_child",
            "reserve_child",
            task_id,
            parent_bot_id,
            parent_mode.value,
            cost,
            client_id,
            _ms(lease_seconds),
            staged_limit,
            _ms(staged_timeout),
            weight,
            quotas.terms(quota, self.clock()),
        )
        return codec.decision("reserve_child", task_id, reply, parent_bot_id)

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
        trip and run in that order."""
        reply = self._run(
            "settle",
            "settle",
            task_id,
            outcome.value,
            dispatch,
            _ms(lease_seconds),
            DISPATCH_WINDOW,
        )
        return self._settlement(task_id, reply)

    @staticmethod
    async def _settlement(task_id: str, pending: Awaitable[Any]) -> Settlement | None:
        reply = await pending
        if reply is None:
            return None
        return Settlement(
            task_id=task_id,
            bot_id=int(reply[0]),
            mode=Mode(codec.text(reply[1])),
            outcome=Outcome(codec.text(reply[2])),
            refunded=int(reply[3]),
            dispatched=tuple(codec.dispatched(item) for item in reply[4]),
        )

    async def extend_lease(self, task_id: str, seconds: float) -> bool:
        """Lease until now + `seconds`; False if the task holds no reservation."""
        return bool(await self._run("extend_lease", "extend_lease", task_id, _ms(seconds)))

    async def claim_expired_leases(self, limit: int, claim_seconds: float) -> list[LeaseClaim]:
        """Up to `limit` reservations whose lease ran out; each is leased to the caller for
        `claim_seconds` so no other replica claims it meanwhile."""
        reply = await self._run("claim_expired_leases", "claim_leases", limit, _ms(claim_seconds))
        return [
            LeaseClaim(task_id=codec.text(task), bot_id=int(bot), mode=Mode(codec.text(mode)))
            for task, bot, mode in reply
        ]

    async def dispatch_staged(
        self, limit: int, lease_seconds: float
    ) -> list[Reservation | Dropped]:
        """Reserve up to `limit` staged tasks that can run now (FIFO within a key, keys by
        weighted fair queueing; at most DISPATCH_WINDOW decided); each is returned to
        exactly one caller, with `staged=True`. A task
        keeps the lease length it was staged with; `lease_seconds` serves when it has none.
        Staged children whose parent's account can never take them are dropped from the
        queue and returned as `Dropped` (to exactly one caller too), beside the limit."""
        reply = await self._run(
            "dispatch_staged", "dispatch_staged", limit, _ms(lease_seconds), DISPATCH_WINDOW
        )
        return [codec.dispatched(item) for item in reply]

    async def cancel_staged(self, task_id: str) -> bool:
        return bool(await self._run("cancel_staged", "cancel_staged", task_id))

    async def staged_count(self) -> int:
        async with _errors("staged_count", self.timeout):
            return int(await self.redis.zcard(self.keys.staged_queue()))

    async def tick(self) -> TickResult:
        """One bounded maintenance pass: renewals due, cooling deadlines, staged timeouts,
        pacing changes due; then new pacing plans for accounts that used theirs up."""
        renewed, woken, expired, paced = await self._run(
            "tick", "tick", TICK_LIMIT, RENEWAL_PERIOD_SECONDS * 1000
        )
        for done in range(1, PACE_ROUNDS):  # many windows opening at once: more, bounded steps
            if len(paced) < TICK_LIMIT * done:
                break
            more = await self._run("tick", "tick", TICK_LIMIT, RENEWAL_PERIOD_SECONDS * 1000)
            renewed, woken, expired = (
                [*renewed, *more[0]],
                [*woken, *more[1]],
                [*expired, *more[2]],
            )
            paced = [*paced, *more[3]]
        replanned = await self._replan(TICK_LIMIT)
        return TickResult(
            renewed=tuple(int(item) for item in renewed),
            woken=tuple(int(item) for item in woken),
            expired_staged=tuple(codec.text(item) for item in expired),
            paced=tuple(sorted({int(item) for item in (*paced, *replanned)})),
        )

    async def _replan(self, limit: int) -> list[int]:
        """Compute new pacing plans (routing/pacing.py: time zones) for up to `limit`
        accounts whose look-ahead ran out, and store them (pace_plan.lua)."""
        async with _errors("tick", self.timeout):
            ids = [
                codec.text(item)
                for item in await self.redis.zrange(self.keys.index("pref"), 0, limit - 1)
            ]
            if not ids:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for bot_id in ids:
                    pipe.hmget(self.keys.account(int(bot_id)), "tz", "ah", "ao")
                rows = await pipe.execute()
        now_ms = _ms(self.clock())
        args: list[str | int] = []
        for bot_id, row in zip(ids, rows, strict=True):
            tz, ah, ao = (codec.text(item) if item is not None else "" for item in row)
            if not tz:
                continue
            profile = pacing.Pacing(
                timezone=tz, active_hours=pacing.split(ah), actions_only_hours=pacing.split(ao)
            )
            plan = pacing.plan(profile, now_ms).fields()
            args += [bot_id, f"{tz}|{ah}|{ao}", *plan.values()]
        if not args:
            return []
        done = await self._run("tick", "pace_plan", *args)
        return [int(item) for item in done]

    # -- the pool as a whole ----------------------------------------------------------------
    async def pool_snapshot(self, per_account: bool = False) -> PoolSnapshot:
        """Totals for metrics in two round trips at most, whatever the pool's size."""
        async with _errors("pool_snapshot", self.timeout):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.pool_totals())
                pipe.zcard(self.keys.staged_queue())
                if per_account:
                    pipe.smembers(self.keys.accounts())
                replies = await pipe.execute()
            snapshot = from_totals(codec.fields(replies[0]), int(replies[1]))
            if not per_account:
                return snapshot
            ids = sorted(int(item) for item in replies[2])
            async with self.redis.pipeline(transaction=False) as pipe:
                for bot_id in ids:
                    pipe.hmget(self.keys.account(bot_id), "fl", "fi", "ri", "st", "tz", "nf", "nr")
                figures = await pipe.execute()
        per = tuple(
            AccountFigures(
                bot_id,
                int(left),
                int(fast),
                int(relax),
                AccountState(codec.text(state)),
                paced=tz is not None,
                fast_today=int(nf or 0),
                relax_today=int(nr or 0),
            )
            for bot_id, (left, fast, relax, state, tz, nf, nr) in zip(ids, figures, strict=True)
            if left is not None
        )
        return replace(snapshot, per_account=per)

    async def apply_pool(self, pool_file: PoolFile, *, dry_run: bool = False) -> list[PoolChange]:
        """Make the pool match the file (see routing.poolsync.apply_pool)."""
        return await poolsync.apply_pool(self, pool_file, dry_run=dry_run)

    async def export_pool(self) -> str:
        """The pool as a pool file (declared figures), readable by `parse_pool_file`."""
        return await poolsync.export_pool(self)
