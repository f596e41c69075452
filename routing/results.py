"""What a routing decision returns: a reservation, a staged task, a dropped staged task, or a
settlement."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from routing.model import Mode

QuotaFigures = tuple[tuple[str, int], ...]  # (limit name, what is left), e.g. ("jobs_day", 3)
QuotaAlerts = tuple[tuple[str, int], ...]  # (limit name, percent reached), e.g. ("jobs_day", 80)


class Outcome(StrEnum):
    """How a task ended, for settlement: completed keeps fast time, the others refund it."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Reservation:
    """An account's slot (and fast time) held for one task until it settles or its lease ends.

    `decision` is one of: `routed`, `backup:no_fast_hours` / `backup:no_active_primary` (a
    backup-tier account took it), `fallback_relax:no_fast_hours`, `inherited`,
    `inherited_relax:<reason>` (reason `setting_relax` or `no_fast_time`), `pinned`,
    `pinned_relax:<reason>` (a task pinned to an account); a reservation made
    when a staged task is dispatched keeps the decision it would have had, and `staged` is
    true.
    """

    task_id: str
    bot_id: int
    mode: Mode  # the effective mode
    cost: int  # fast seconds reserved (0 for relax)
    decision: str
    staged: bool = False
    quota: QuotaFigures = ()  # what is left of each of the key's limits, after this task
    alerts: QuotaAlerts = ()  # soft thresholds this task crossed first in their period


@dataclass(frozen=True)
class Staged:
    """No slot is free now; the task waits in its key's FIFO queue, keys served fairly.

    `reason`: `fast_slots_busy`, `relax_slots_busy`, `parent_busy` / `parent_paused`,
    `pinned_busy` / `pinned_paused`, `key_in_flight_limit`, or the pacing rule that holds it:
    `paced:outside_hours`, `paced:actions_only`, `paced:daily_cap`, `paced:gap`.
    """

    task_id: str
    reason: str
    decision: str = "staged"
    quota: QuotaFigures = ()
    alerts: QuotaAlerts = ()


@dataclass(frozen=True)
class Dropped:
    """A staged child task that can never run: its parent's account was removed, disabled, or
    can't run it in relax (basic plan) since it was staged. The dispatch that finds it takes
    it out of the queue; the gateway fails it as a fresh request would have been refused
    (`parent_account_unavailable`). `reason` is ParentAccountUnavailableError's."""

    task_id: str
    bot_id: int
    reason: str


@dataclass(frozen=True)
class Settlement:
    """What settling a reservation did. `refunded` is the fast seconds given back;
    `dispatched`, the staged tasks the freed slot went to at once (when asked for), for the
    caller to forward (or fail, for a `Dropped` child), as dispatch_staged's would be."""

    task_id: str
    bot_id: int
    mode: Mode
    outcome: Outcome
    refunded: int
    dispatched: tuple[Reservation | Dropped, ...] = ()


@dataclass(frozen=True)
class LeaseClaim:
    """A reservation whose lease ran out, claimed by this replica for reconciliation."""

    task_id: str
    bot_id: int
    mode: Mode


@dataclass(frozen=True)
class TickResult:
    """What one maintenance pass did (renewals, cooling ends, staged timeouts)."""

    renewed: tuple[int, ...] = ()
    woken: tuple[int, ...] = ()
    expired_staged: tuple[str, ...] = ()
    paced: tuple[int, ...] = ()  # accounts a pacing change (window edge, midnight, gap end) moved
