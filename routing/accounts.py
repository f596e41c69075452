"""Accounts: the operator's definition (pool file, admin API) and the live status."""

from __future__ import annotations

from dataclasses import dataclass, field

from routing.model import PLANS, AccountState, Plan, Setting
from routing.pacedefault import OwnPacing
from routing.pacing import Pacing

MAX_SLOTS = 1000  # keeps the strategy scores exact (routing/lua/indexes.lua)
MAX_WEIGHT = 1000


@dataclass(frozen=True)
class AccountSpec:
    """An account as the operator declares it. None means "the plan's default"."""

    bot_id: int
    name: str = ""
    plan: Plan = Plan.STANDARD
    setting: Setting = Setting.FAST
    fast_seconds_left: int | None = None
    renews_at: float | None = None  # unix seconds
    fast_slots: int | None = None
    relax_slots: int | None = None
    weight: int = 1
    tags: tuple[str, ...] = ()
    state: AccountState = AccountState.ACTIVE
    pacing: Pacing | None = None  # None: no pacing (always on, no caps, no gaps, primary)
    # How the operator declared it (routing/pacedefault.py): inherit the pool's default, some
    # keys over it, or off. None: `pacing` is the account's own, whole (or it inherits when
    # None). The catalog derives `pacing` from this and the default when applying.
    own_pacing: OwnPacing | None = None

    def check(self) -> None:
        """ValueError when the definition can't be applied (limits, cooling's deadline)."""
        if self.state is AccountState.COOLING:
            raise ValueError("cooling needs a deadline: use set_state")
        if not 0 <= self.effective_fast_slots <= MAX_SLOTS:
            raise ValueError(f"fast_slots must be from 0 to {MAX_SLOTS}")
        if not 0 <= self.effective_relax_slots <= MAX_SLOTS:
            raise ValueError(f"relax_slots must be from 0 to {MAX_SLOTS}")
        if not 1 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"weight must be from 1 to {MAX_WEIGHT}")

    @property
    def effective_fast_slots(self) -> int:
        return PLANS[self.plan].fast_slots if self.fast_slots is None else self.fast_slots

    @property
    def effective_relax_slots(self) -> int:
        if not PLANS[self.plan].relax:
            return 0
        return PLANS[self.plan].relax_slots if self.relax_slots is None else self.relax_slots

    @property
    def effective_fast_seconds(self) -> int:
        if self.fast_seconds_left is None:
            return PLANS[self.plan].fast_seconds_per_month
        return self.fast_seconds_left


@dataclass(frozen=True)
class PaceStatus:
    """An account's pacing now (unix seconds): `phase` active | actions_only | off; `held`
    the rule that keeps new root work off it now (`paced:...`), "" when none."""

    phase: str
    phase_until: float | None  # the next window change
    next_phase: str | None
    fast_today: int
    relax_today: int
    day_ends: float | None  # local midnight: caps reset
    gap_until: float | None  # no new root task before this
    held: str
    ready_at: float | None  # when pacing next lets root work in (None: now, or not known yet)


@dataclass(frozen=True)
class AccountStatus:
    """An account as it is now in Redis: definition plus live figures."""

    bot_id: int
    name: str
    plan: Plan
    setting: Setting  # current (mjgate switches it to relax at zero fast time)
    declared_setting: Setting  # the operator's, restored at renewal
    state: AccountState
    state_reason: str
    state_until: float | None
    fast_seconds_left: int  # not counting reserved
    fast_seconds_reserved: int
    fast_slots: int
    relax_slots: int
    fast_in_flight: int
    relax_in_flight: int
    weight: int
    tags: tuple[str, ...]
    renews_at: float | None
    history: tuple[dict[str, object], ...] = field(default=())  # newest first
    # The operator's last declared figures (pool file, admin API): what `export_pool` writes.
    declared_fast_seconds: int | None = None
    declared_state: AccountState | None = None
    declared_renews_at: float | None = None
    pacing: Pacing | None = None  # the profile it runs by (its own keys over the default)
    pace: PaceStatus | None = None  # where the account stands against its profile
    own_pacing: OwnPacing | None = None  # as declared (filled in by the catalog)
    inherited: tuple[str, ...] = ()  # the pacing keys it takes from the pool's default

    @property
    def in_flight(self) -> int:
        return self.fast_in_flight + self.relax_in_flight
