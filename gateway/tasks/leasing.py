"""LeaseGuard: a reserved task is sent only inside its reservation's lease.

A reservation's lease is the reconciler's cue: once it has run out, any replica may claim the
reservation and end it (a task with no upstream id is failed as `upstream_outcome_unknown` and
its slot released). A task sent after that would run on a slot already given back, i.e. one
more task on the account than its slots. So, just before the create call, the sender makes
sure the lease outlasts the whole send (`send_window`: the upstream's connect and read
timeouts, the patient write of the upstream id after, a margin for clock skew):

- a task sent right after it was reserved has the time (lease 120 s, window 97 s by
  default): no Redis call;
- a task held longer (a stalled process, a Redis outage, the upstream's 429 backoff, a lease
  set shorter than the window) first extends its lease (`extend_lease(to_send=True)`), which
  Redis refuses when a reconciler claimed the reservation; the task is then failed
  `reservation_expired` and not sent (503 for a create), and a StoreError (Redis
  unreachable) is raised as it is: not sent either; the lease then ends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from gateway import logs
from gateway.errors import ReservationExpiredError
from gateway.settings import Settings
from gateway.taskrecord import TaskRecord
from gateway.tasks.tracking import Tracker
from routing.results import Reservation

SKEW_MARGIN = 2.0  # seconds: replicas' clocks may differ (leases are unix times)


def send_window(settings: Settings) -> float:
    """The lease a task needs left when it is sent (seconds)."""
    upstream = settings.upstream_connect_timeout + settings.upstream_timeout
    return upstream + settings.lease_seconds / 2 + SKEW_MARGIN


class Leases(Protocol):
    """What the guard needs of the store (routing.store.PoolStore)."""

    async def extend_lease(self, task_id: str, seconds: float, *, to_send: bool = False) -> bool:
        """Lease until now + `seconds`; False if gone or, `to_send`, claimed by a reconciler."""


class LeaseGuard:
    def __init__(
        self,
        *,
        leases: Leases,
        tracker: Tracker,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.leases = leases
        self.tracker = tracker
        self.window = window
        self.clock = clock

    async def before_send(self, record: TaskRecord, reservation: Reservation) -> None:
        """Return when the lease outlasts the send; else fail the task and raise."""
        if reservation.lease_until - self.clock() >= self.window:
            return
        if await self.leases.extend_lease(record.task_id, self.window, to_send=True):
            return
        logs.event("reservation_expired", task_id=record.task_id, bot_id=reservation.bot_id)
        await self.tracker.fail(
            record, "reservation_expired", "the task was held past its reservation; not sent"
        )
        raise ReservationExpiredError(
            "the task was held past its reservation and was not sent; retry",
            headers={"retry-after": "1"},
        )
