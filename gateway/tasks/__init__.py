"""The task lifecycle, one module per job, wired once by `build` (data flows one way).

    create ─► creating.Creator ─► sending.Sender ─► GoAPI
                 │ record + reservation    │ refused: another account, or staged again
                 │ in one round trip       ▼
                 └──── staged ◄──── tracking.Tracker ◄── webhooks, checking.Checker (client
                                         │ settle        GETs, the completion tracker,
                                         ▼               the reconciler)
                                  handoff.Handoff ──► loops.Loops ──► Sender.send_staged

- `creating`: Idempotency-Key, the requested mode capped by the key, the record written with
  the reservation (or the task staged);
- `sending`: the create call; the body sent (`body`); the upstream's refusals and the
  accounts they update (`refusals`); the one retry path, another account or staged again
  (`rerouting`);
- `tracking`: news from webhooks, polls and the tracker; settle; every way a task ends;
- `cancelling`: a client's cancel and the batch cancel;
- `checking`: GETs upstream: a client's poll, the completion tracker over the shared
  schedule (`routing.schedule`), the reconciler of expired leases; the maintenance tick;
- `handoff`: queues from the stages to the loops (staged tasks a settle reserved, records for
  client webhooks, webhook news that arrived while Redis was down); nothing calls back up;
- `sweeping`: open tasks nothing holds any more (a failover lost their reservation, queue
  entry or check): tracked again or ended;
- `loops`: the background loops, which only drain queues and run passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.tasks.backoff import UpstreamBackoff
from gateway.tasks.cancelling import Canceller
from gateway.tasks.checking import Checker
from gateway.tasks.creating import Creator
from gateway.tasks.handoff import Handoff
from gateway.tasks.leasing import LeaseGuard, send_window
from gateway.tasks.loops import Loops
from gateway.tasks.refusals import AccountRefusals
from gateway.tasks.rerouting import KeyPolicies, Rerouter
from gateway.tasks.sending import Sender
from gateway.tasks.sweeping import ClientIds, Sweeper
from gateway.tasks.tracking import Tracker
from gateway.upstream import UpstreamClient
from gateway.webhooks.alerts import AlertWebhook
from gateway.webhooks.outbound import Outbox
from routing.costs import CostTable
from routing.schedule import CheckSchedule
from routing.store import PoolStore


@dataclass(frozen=True)
class Tasks:
    handoff: Handoff
    schedule: CheckSchedule
    tracker: Tracker
    canceller: Canceller
    sender: Sender
    creator: Creator
    checker: Checker
    sweeper: Sweeper
    loops: Loops


def build(
    settings: Settings,
    *,
    store: PoolStore,
    records: RecordStore,
    upstream: UpstreamClient,
    metrics: Metrics,
    outbox: Outbox,
    policies: KeyPolicies,
    clients: ClientIds,
    webhook: dict[str, str] | None,
    clock: Callable[[], float],
    alerts: AlertWebhook | None = None,
) -> Tasks:
    """Every stage of the lifecycle, each given what it needs through its constructor."""
    handoff = Handoff()
    schedule = CheckSchedule(
        store.pipe,
        store.keys,
        interval=settings.track_interval,
        # a claimed check is not claimed again before its GET can have timed out
        claim_seconds=settings.upstream_timeout + settings.upstream_connect_timeout + 1.0,
        gets_per_second=settings.track_gets_per_second,
        clock=clock,
    )
    tracker = Tracker(
        settings,
        store=store,
        records=records,
        schedule=schedule,
        upstream=upstream,
        metrics=metrics,
        handoff=handoff,
        clock=clock,
    )
    costs = CostTable.with_overrides(settings.cost_overrides)
    rerouter = Rerouter(
        settings, store=store, records=records, tracker=tracker, costs=costs, policies=policies
    )
    sender = Sender(
        records=records,
        schedule=schedule,
        upstream=upstream,
        metrics=metrics,
        tracker=tracker,
        refusals=AccountRefusals(store, metrics, clock=clock),
        rerouter=rerouter,
        webhook=webhook,
        patience=settings.lease_seconds / 2,
        lease_guard=LeaseGuard(leases=store, window=send_window(settings), clock=clock),
        backoff=UpstreamBackoff(store.pipe, store.keys, clock=clock),
        clock=clock,
    )
    creator = Creator(
        settings,
        store=store,
        records=records,
        sender=sender,
        metrics=metrics,
        costs=costs,
        alerts=alerts,
        clock=clock,
    )
    checker = Checker(
        settings,
        tracker=tracker,
        store=store,
        records=records,
        schedule=schedule,
        upstream=upstream,
        metrics=metrics,
        handoff=handoff,
    )
    sweeper = Sweeper(
        store=store,
        records=records,
        checker=checker,
        tracker=tracker,
        clients=clients,
        grace=2 * settings.lease_seconds,
        every=settings.sweep_interval,
        clock=clock,
    )
    loops = Loops(
        store=store,
        schedule=schedule,
        checker=checker,
        sweeper=sweeper,
        sender=sender,
        tracker=tracker,
        handoff=handoff,
        outbox=outbox,
        interval=settings.reconcile_interval,
        lease_seconds=settings.lease_seconds,
    )
    canceller = Canceller(tracker)
    return Tasks(handoff, schedule, tracker, canceller, sender, creator, checker, sweeper, loops)
