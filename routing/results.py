"""What routing returns: the decision's kind, a reservation, a staged task, a dropped staged task,
a settlement, a claimed lease, a maintenance pass."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from routing.model import Mode

R = TypeVar("R", bound="Reservation | Staged | Dropped")

QuotaFigures = tuple[tuple[str, int], ...]  # (limit name, what is left), e.g. ("jobs_day", 3)
QuotaAlerts = tuple[tuple[str, int], ...]  # (limit name, percent reached), e.g. ("jobs_day", 80)


class OpenStrEnum(StrEnum):
    """A StrEnum that keeps a value it does not know (written by a newer replica during a
    rolling upgrade, or a status the upstream adds) as written rather than failing the read:
    the member's name is then `UNKNOWN` and its value the text."""

    @classmethod
    def _missing_(cls, value: object) -> OpenStrEnum | None:
        if not isinstance(value, str) or not value:
            return None
        unknown = str.__new__(cls, value)
        unknown._name_ = "UNKNOWN"
        unknown._value_ = value
        return unknown


class Decision(OpenStrEnum):
    """Why a task runs where (and how) it runs: one vocabulary from the reserve scripts' replies
    (`routing/lua/decide.lua`, `selection.lua`) through the task's record, its
    `x-mjgate-decision` header and the `decision` label of `mjgate_tasks_created_total`. The
    last three are the gateway's own. One this version does not know is kept (OpenStrEnum):
    the metrics label reports it as `other`, like any value outside its set."""

    ROUTED = "routed"
    # a backup-tier account took it, and why (`backup:<why>`)
    BACKUP_NO_FAST_HOURS = "backup:no_fast_hours"
    BACKUP_NO_ACTIVE_PRIMARY = "backup:no_active_primary"
    BACKUP_NO_RELAX_PRIMARY = "backup:no_relax_primary"
    FALLBACK_RELAX = "fallback_relax:no_fast_hours"  # fast or turbo asked, none had fast time
    # a child task on its parent's account (`inherited_relax:<reason>`: it runs relax)
    INHERITED = "inherited"
    INHERITED_RELAX_SETTING = "inherited_relax:setting_relax"
    INHERITED_RELAX_NO_FAST_TIME = "inherited_relax:no_fast_time"
    # a root task pinned to one account by its key (`pinned_relax:<reason>` as above)
    PINNED = "pinned"
    PINNED_RELAX_SETTING = "pinned_relax:setting_relax"
    PINNED_RELAX_NO_FAST_TIME = "pinned_relax:no_fast_time"
    # the gateway's: a child's relax the client asked for, a staged task, a request passed through
    INHERITED_RELAX_REQUESTED = "inherited_relax:requested"
    STAGED = "staged"
    FORWARDED = "forwarded"

    @property
    def pinned(self) -> bool:
        """The task's key chose the account: no other may take it."""
        return self in (Decision.PINNED, Decision.PINNED_RELAX_SETTING,
                        Decision.PINNED_RELAX_NO_FAST_TIME)  # fmt: skip


class Outcome(StrEnum):
    """How a task ended, for settlement: completed keeps fast time, the others refund it."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # the upstream refused the create: never ran; its daily-cap count back


@dataclass(frozen=True)
class Reservation:
    """An account's slot (and fast time) held for one task until it settles or its lease ends.

    `decision` is one the reserve scripts make (every `Decision` but the gateway's three); a
    reservation made when a staged task is dispatched keeps the decision it would have had,
    and `staged` is true.
    """

    task_id: str
    bot_id: int
    mode: Mode  # the effective mode
    cost: int  # fast seconds reserved (0 for relax)
    decision: Decision
    staged: bool = False
    quota: QuotaFigures = ()  # what is left of each of the key's limits, after this task
    alerts: QuotaAlerts = ()  # soft thresholds this task crossed first in their period
    # when the lease runs out at the earliest (unix seconds, the store's clock; 0: unknown),
    # after which the reconciler may end the reservation (gateway.tasks.leasing)
    lease_until: float = 0.0
    # the reconciler's claim, when it re-sends a staged task that was never sent
    claim: str = ""


def leased(decision: R, until: float) -> R:
    """`decision` with its lease's end, if it is a reservation (a store's reply)."""
    return replace(decision, lease_until=until) if isinstance(decision, Reservation) else decision


@dataclass(frozen=True)
class Staged:
    """No slot is free now; the task waits in its key's FIFO queue, keys served fairly.

    `reason`: `fast_slots_busy`, `relax_slots_busy`, `parent_busy` / `parent_paused`,
    `pinned_busy` / `pinned_paused`, `key_in_flight_limit`, or the pacing rule that holds it:
    `paced:outside_hours`, `paced:actions_only`, `paced:daily_cap`, `paced:gap`.
    """

    task_id: str
    reason: str
    decision: Decision = Decision.STAGED
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
    caller to send (or fail, for a `Dropped` child), as dispatch_staged's would be."""

    task_id: str
    bot_id: int
    mode: Mode
    outcome: Outcome
    refunded: int
    dispatched: tuple[Reservation | Dropped, ...] = ()


@dataclass(frozen=True)
class LeaseClaim:
    """A reservation whose lease ran out, claimed by this replica for reconciliation.
    `resend`: a staged task that was never sent (no sender marked it before the upstream
    call: its settle's or dispatch's reply was lost), to be sent under this claim."""

    task_id: str
    bot_id: int
    mode: Mode
    resend: Reservation | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TickResult:
    """What one maintenance pass did (renewals, cooling ends, staged timeouts)."""

    renewed: tuple[int, ...] = ()
    woken: tuple[int, ...] = ()
    expired_staged: tuple[str, ...] = ()
    paced: tuple[int, ...] = ()  # accounts a pacing change (window edge, midnight, gap end) moved
