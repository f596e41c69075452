"""LeaseGuard: a reserved task is sent only inside its reservation's lease, and only once.

A reservation's lease is the reconciler's cue: once it has run out, any replica may claim the
reservation (`claim_leases` marks it) and end it (a task with no upstream id is failed as
`upstream_outcome_unknown` and its slot released). A task sent after that would run on a slot
already given back, i.e. one more task on the account than its slots. So, just before the
create call, the sender makes sure the lease outlasts the whole send (`send_window`: the
upstream's connect and read timeouts, the patient write of the upstream id after, a margin
for clock skew):

- a fresh create sent right after it was reserved has the time (lease 120 s, window 97 s by
  default): no Redis call;
- a staged task, and any task held longer (a stalled process, a Redis outage, the upstream's
  429 backoff, a lease set shorter than the window), first extends its lease and marks the
  reservation sent (`extend_lease(to_send=True)`, one round trip). Redis refuses when the
  task was marked sent already or a reconciler claimed the reservation; the task is then not
  sent (`ReservationExpiredError`, 503 for a create) and its fate is the claim holder's. A
  StoreError (Redis unreachable) is raised as it is: not sent either.

The mark makes a staged task's lost reply recoverable: a staged reservation whose lease ran
out unmarked was never sent (its settle's or dispatch's reply was lost, or its replica died
before sending), so the reconciler sends it under its claim (`LeaseClaim.resend`) instead of
failing it; a stale sender of the same reservation finds the claim and stays out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from gateway import logs
from gateway.errors import ReservationExpiredError
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord
from routing.results import Reservation

SKEW_MARGIN = 2.0  # seconds: replicas' clocks may differ (leases are unix times)


def send_window(settings: Settings) -> float:
    """The lease a task needs left when it is sent (seconds)."""
    upstream = settings.upstream_connect_timeout + settings.upstream_timeout
    return upstream + settings.lease_seconds / 2 + SKEW_MARGIN


class Leases(Protocol):
    """What the guard needs of the store (routing.store.PoolStore)."""

    async def extend_lease(
        self, task_id: str, seconds: float, *, to_send: bool = False, claim: str = ""
    ) -> bool:
        """Lease until now + `seconds`, marking the task sent; False if refused."""


class LeaseGuard:
    def __init__(
        self,
        *,
        leases: Leases,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.leases = leases
        self.window = window
        self.clock = clock

    async def before_send(self, record: TaskRecord, reservation: Reservation) -> None:
        """Return when the task may be sent now; else raise (it is not sent)."""
        room = reservation.lease_until - self.clock()
        if not reservation.staged and room >= self.window:
            return
        if await self.leases.extend_lease(
            record.task_id, self.window, to_send=True, claim=reservation.claim
        ):
            return
        logs.event("reservation_expired", task_id=record.task_id, bot_id=reservation.bot_id)
        raise ReservationExpiredError(
            "the task was held past its reservation and was not sent; retry",
            headers={"retry-after": "1"},
        )
