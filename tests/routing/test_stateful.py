"""The scripts against the oracle (model_oracle.py), step by step, under hypothesis.

Every rule runs on Redis and on the model; both must reach the same decision, and after each
step the accounts must agree and the invariants hold: in flight <= slots per mode, fast time
never negative, left + reserved + consumed = the fast time at the last reset, running totals
equal to a recount. Accounts carry random pacing profiles (time zones, hours across midnight,
actions-only hours, caps, gaps with jitter, backups) that the operator changes at random while
time moves by seconds to a month: the model checks every submission against the rules (hours,
caps, gaps) before it counts it, and each account's phase, counts and gap must agree. Pools
have at most 5 accounts, so the scripts' "best 8 by strategy, then the most fast time" is
exactly the model's "best by strategy with enough fast time"; the larger case is test_root's
`test_a_feasible_account_beyond_the_first_candidates_is_found`.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from routing.accounts import AccountSpec
from routing.catalog import Catalog
from routing.errors import (
    NoRelaxCapableAccountError,
    PacedUnavailableError,
    ParentAccountUnavailableError,
    StagedLimitError,
)
from routing.keys import Keys
from routing.model import PLANS, AccountState, Mode, Plan, Setting, Strategy
from routing.pacing import Pacing, Tier, phase_at
from routing.pipe import Pipe
from routing.results import Dropped, Outcome, Reservation, Staged
from routing.store import PoolStore
from tests.routing.helpers import START, FakeClock, totals_from_accounts
from tests.routing.model_oracle import Account, Decision, Pool

T = TypeVar("T")
LEASE_MS, TIMEOUT_MS, LIMIT = 30_000, 120_000, 3
CLIENTS = ("a", "b", "c")
WEIGHTS = {"a": 1, "b": 3, "c": 1}  # the keys' shares of staged work
COSTS = (0, 10, 60, 120)

profiles = st.none() | st.builds(
    Pacing,
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    active_hours=st.sampled_from(
        [(), ("08:00-20:00",), ("22:00-06:00",), ("09:00-12:00", "13:00-17:30")]
    ),
    actions_only_hours=st.sampled_from([(), ("12:00-13:00",), ("20:00-22:00",)]),
    fast_cap=st.sampled_from([None, 0, 1, 3]),
    relax_cap=st.sampled_from([None, 1, 2]),
    caps_count_children=st.booleans(),
    min_gap_seconds=st.sampled_from([0.0, 30.0, 300.0]),
    gap_jitter_seconds=st.sampled_from([0.0, 20.0]),
    tier=st.sampled_from([Tier.PRIMARY] * 3 + [Tier.BACKUP]),
)

account_specs = st.fixed_dictionaries(
    {
        "plan": st.sampled_from(list(Plan)),
        "setting": st.sampled_from([Setting.FAST] * 3 + [Setting.RELAX]),
        "fast_seconds_left": st.sampled_from([0, 60, 100, 120, 180, 300, 5000]),
        "fast_slots": st.sampled_from([0, 1, 1, 2, 2, 3]),
        "relax_slots": st.integers(0, 2),
        "weight": st.integers(1, 3),
        "state": st.sampled_from(
            [AccountState.ACTIVE] * 6 + [AccountState.DRAINING, AccountState.PAUSED]
        ),
        "renews_in": st.none() | st.integers(1, 3 * 86400),
        "pacing": profiles,
    }
)


def _outcome(result: Reservation | Staged | Dropped | Exception) -> Decision:
    if isinstance(result, Reservation):
        return (
            "R",
            result.bot_id,
            result.mode.value,
            result.cost,
            result.decision,
            int(result.staged),
        )
    if isinstance(result, Staged):
        return ("S", result.reason)
    if isinstance(result, Dropped):
        return ("D", result.bot_id, result.reason)
    if isinstance(result, ParentAccountUnavailableError):
        return ("E", "parent_unavailable", result.reason)
    if isinstance(result, NoRelaxCapableAccountError):
        return ("E", "no_relax_capable_account")
    if isinstance(result, StagedLimitError):
        return ("E", "staged_limit")
    if isinstance(result, PacedUnavailableError):
        return ("E", "paced", result.reason, result.retry_after)
    raise result


@pytest.mark.parametrize("functions", [True, False], ids=["functions", "eval"])
def test_the_scripts_follow_the_rules(redis_url: str, prefix: str, functions: bool) -> None:
    """Called as Redis Functions (the libraries' locals outlive a call: nothing may leak
    from one call or pool into the next) and as EVAL scripts alike."""
    loop = asyncio.new_event_loop()
    client = Redis.from_url(redis_url)

    class PoolMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock(START)
            self.pipe = Pipe.of(client, functions=functions)
            self.store = PoolStore(
                client, Keys(f"{prefix}:{uuid.uuid4().hex[:8]}"), clock=self.clock, pipe=self.pipe
            )
            self.catalog = Catalog(self.store)
            self.model = Pool()
            self.tasks = 0
            self.specs: dict[int, AccountSpec] = {}

        def run(self, call: Awaitable[T]) -> T:
            return loop.run_until_complete(call)

        async def gap_held(self, bot_id: int) -> bool:
            """Routing has met the account in its gap (pacing.lua's `gp`)."""
            return bool(await self.store.redis.hget(self.store.keys.account(bot_id), "gp"))

        def teardown(self) -> None:
            self.run(self.store.aclose())
            self.run(self.pipe.aclose())

        def attempt(self, call: Awaitable[Any]) -> Decision:
            try:
                return _outcome(self.run(call))
            except (
                NoRelaxCapableAccountError,
                ParentAccountUnavailableError,
                StagedLimitError,
                PacedUnavailableError,
            ) as exc:
                return _outcome(exc)

        @property
        def now(self) -> int:
            return round(self.clock() * 1000)

        def task_id(self) -> str:
            """Every other id ends in hex digits as mjgate's UUIDs do: the gap's jitter then
            reads them, the others' their SHA-1 (pacing.lua's pace_take)."""
            self.tasks += 1
            if self.tasks % 2:
                return f"task{self.tasks:03d}"
            return f"task{self.tasks:03d}-{hashlib.md5(str(self.tasks).encode()).hexdigest()[:12]}"

        @initialize(
            strategy=st.sampled_from(list(Strategy)),
            specs=st.lists(account_specs, min_size=1, max_size=5),
        )
        def make_pool(self, strategy: Strategy, specs: list[dict[str, Any]]) -> None:
            self.run(self.catalog.set_strategy(strategy))
            self.model.strategy = strategy
            for bot_id, spec in enumerate(specs, start=1):
                fields = dict(spec)
                renews_in = fields.pop("renews_in")
                renews_at = None if renews_in is None else self.clock() + renews_in
                if fields["plan"] is Plan.BASIC:
                    fields["relax_slots"] = 0
                spec = AccountSpec(bot_id=bot_id, renews_at=renews_at, **fields)
                self.specs[bot_id] = spec
                self.run(self.catalog.apply_account(spec))
                left = fields["fast_seconds_left"]
                self.model.accounts[bot_id] = Account(
                    bot_id=bot_id,
                    plan=fields["plan"],
                    declared_setting=fields["setting"],
                    setting=Setting.RELAX if left <= 0 else fields["setting"],
                    state=fields["state"],
                    fast_slots=fields["fast_slots"],
                    relax_slots=fields["relax_slots"],
                    weight=fields["weight"],
                    monthly=PLANS[fields["plan"]].fast_seconds_per_month,
                    left=left,
                    renews_at=None if renews_at is None else round(renews_at * 1000),
                )
                self.model.accounts[bot_id].set_profile(fields["pacing"], self.now)

        # -- decisions ------------------------------------------------------------------------
        @rule(
            requests=st.lists(
                st.tuples(
                    st.sampled_from(list(Mode)),
                    st.sampled_from(COSTS),
                    st.sampled_from(CLIENTS),
                    st.sets(st.integers(1, 5), max_size=2),
                ),
                min_size=1,
                max_size=3,
            )
        )
        def reserve_root(self, requests: list[tuple[Mode, int, str, set[int]]]) -> None:
            for mode, cost, client, exclude in requests:
                cost = 0 if mode is Mode.RELAX else cost
                task_id = self.task_id()
                got = self.attempt(
                    self.store.reserve_root(
                        task_id,
                        mode,
                        cost,
                        client_id=client,
                        lease_seconds=LEASE_MS / 1000,
                        staged_limit=LIMIT,
                        staged_timeout=TIMEOUT_MS / 1000,
                        exclude=sorted(exclude),
                        weight=WEIGHTS[client],
                    )
                )
                want = self.model.reserve_root(
                    task_id,
                    mode.value,
                    cost,
                    client,
                    frozenset(exclude),
                    LEASE_MS,
                    LIMIT,
                    TIMEOUT_MS,
                    self.now,
                    WEIGHTS[client],
                )
                assert got == want, (task_id, got, want)

        @rule(
            parent=st.integers(1, 6),
            mode=st.sampled_from(list(Mode)),
            cost=st.sampled_from(COSTS),
            client=st.sampled_from(CLIENTS),
        )
        def reserve_child(self, parent: int, mode: Mode, cost: int, client: str) -> None:
            cost = 0 if mode is Mode.RELAX else cost
            task_id = self.task_id()
            got = self.attempt(
                self.store.reserve_child(
                    task_id,
                    parent,
                    mode,
                    cost,
                    client_id=client,
                    lease_seconds=LEASE_MS / 1000,
                    staged_limit=LIMIT,
                    staged_timeout=TIMEOUT_MS / 1000,
                    weight=WEIGHTS[client],
                )
            )
            want = self.model.reserve_child(
                task_id,
                parent,
                mode.value,
                cost,
                client,
                LEASE_MS,
                LIMIT,
                TIMEOUT_MS,
                self.now,
                WEIGHTS[client],
            )
            assert got == want

        @rule(
            data=st.data(), outcome=st.sampled_from(list(Outcome)), dispatch=st.sampled_from([0, 2])
        )
        def settle(self, data: st.DataObject, outcome: Outcome, dispatch: int) -> None:
            """`dispatch` > 0: the freed slot goes to staged tasks in the same script."""
            task_id = data.draw(st.sampled_from([*sorted(self.model.held), "no-such-task"]))
            got = self.run(
                self.store.settle(
                    task_id, outcome, dispatch=dispatch, lease_seconds=LEASE_MS / 1000
                )
            )
            want = self.model.settle(task_id, outcome.value)
            if want is None:
                assert got is None
                return
            assert got is not None
            assert (got.bot_id, got.mode.value, got.outcome.value, got.refunded) == want
            dispatched = self.model.dispatch(dispatch, self.now) if dispatch else []
            assert [(r.task_id, _outcome(r)) for r in got.dispatched] == dispatched

        @rule(limit=st.integers(1, 4))
        def dispatch(self, limit: int) -> None:
            got = self.run(self.store.dispatch_staged(limit, LEASE_MS / 1000))
            want = self.model.dispatch(limit, self.now)
            assert [(r.task_id, _outcome(r)) for r in got] == want

        @precondition(lambda self: self.model.queue)
        @rule(data=st.data())
        def cancel_staged(self, data: st.DataObject) -> None:
            task_id = data.draw(st.sampled_from([w.task_id for w in self.model.queue]))
            assert self.run(self.store.cancel_staged(task_id)) is self.model.cancel(task_id)

        # -- time -----------------------------------------------------------------------------
        @rule(
            seconds=st.sampled_from([0, 1, 20, 60, 600, 3600, 4 * 3600, 86400, 31 * 86400]),
            limit=st.integers(1, 3),
        )
        def time_passes(self, seconds: int, limit: int) -> None:
            """Leases run out and are claimed; tick renews, wakes and expires."""
            self.clock.advance(seconds)
            claims = self.run(self.store.claim_expired_leases(limit, 15))
            want_claims = self.model.claim(limit, 15_000, self.now)
            assert [(c.task_id, c.bot_id, c.mode.value) for c in claims] == want_claims
            got = self.run(self.store.tick())
            assert (got.renewed, got.woken, got.expired_staged) == self.model.tick(self.now)

        @precondition(lambda self: self.model.held)
        @rule(data=st.data())
        def extend_lease(self, data: st.DataObject) -> None:
            task_id = data.draw(st.sampled_from(sorted(self.model.held)))
            assert self.run(self.store.extend_lease(task_id, 40)) is True
            assert self.model.extend(task_id, 40_000, self.now)

        # -- the operator and GoAPI's notifications -------------------------------------------
        @rule(
            bot_id=st.integers(1, 5),
            seconds=st.none() | st.sampled_from([0, 50, 60, 600]),
            state=st.sampled_from(list(AccountState)),
            cool_for=st.integers(1, 600),
        )
        def operator(
            self, bot_id: int, seconds: int | None, state: AccountState, cool_for: int
        ) -> None:
            """set_fast_time when `seconds` is given, else set_state."""
            if bot_id not in self.model.accounts:
                return
            if seconds is not None:
                self.run(self.store.set_fast_time(bot_id, seconds, reason="test"))
                self.model.accounts[bot_id].reset_fast(seconds)
                return
            until = self.clock() + cool_for
            self.run(self.store.set_state(bot_id, state, until=until, reason="test"))
            self.model.set_state(bot_id, state, round(until * 1000))

        @rule(bot_id=st.integers(1, 5), profile=profiles)
        def change_profile(self, bot_id: int, profile: Pacing | None) -> None:
            """The operator changes an account's pacing (counts stay, a gap at most the new one)."""
            if bot_id not in self.specs:
                return
            self.specs[bot_id] = replace(self.specs[bot_id], pacing=profile)
            self.run(self.catalog.apply_account(self.specs[bot_id]))
            self.model.accounts[bot_id].set_profile(profile, self.now)

        # -- after every step -----------------------------------------------------------------
        @invariant()
        def accounts_agree(self) -> None:
            if not self.model.accounts:
                return
            accounts = self.run(self.catalog.list_accounts())
            assert [a.bot_id for a in accounts] == sorted(self.model.accounts)
            for got in accounts:
                want = self.model.accounts[got.bot_id]
                assert got.fast_in_flight <= got.fast_slots
                assert got.relax_in_flight <= got.relax_slots
                assert got.fast_seconds_left >= 0
                assert got.fast_seconds_left + got.fast_seconds_reserved + want.consumed == (
                    want.total
                )
                assert (
                    got.fast_seconds_left,
                    got.fast_seconds_reserved,
                    got.fast_in_flight,
                    got.relax_in_flight,
                    got.setting,
                    got.state,
                ) == (
                    want.left,
                    want.reserved,
                    want.fast_in_flight,
                    want.relax_in_flight,
                    want.setting,
                    want.state,
                )
                want.catch_up(self.now)
                if want.profile is None:
                    assert got.pace is None
                    continue
                assert got.pace is not None
                phase = {"a": "active", "o": "actions_only", "x": "off"}
                assert got.pace.phase == phase[phase_at(want.profile, self.now)]
                assert (got.pace.fast_today, got.pace.relax_today) == (
                    want.fast_today,
                    want.relax_today,
                )
                gap = want.gap_until
                assert got.pace.gap_until == (None if gap is None else gap / 1000)
            staged = self.run(self.store.staged_count())
            assert staged == len(self.model.queue)
            snapshot = self.run(self.catalog.pool_snapshot(per_account=True))
            held = {a.bot_id for a in accounts if self.run(self.gap_held(a.bot_id))}
            assert snapshot == totals_from_accounts(accounts, staged, held)

    try:
        run_state_machine_as_test(
            PoolMachine,
            settings=settings(
                max_examples=100,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
