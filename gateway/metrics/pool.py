"""The pool series: gauges read from Redis at scrape time, from the latest `PoolSnapshot` handed
to `Metrics.set_pool` (one snapshot, at most two Redis round trips whatever the pool size).
Every replica reports the same pool, so dashboards take `max`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from routing.model import AccountState, Plan, Setting, SlotKind
from routing.snapshot import AccountFigures, PoolSnapshot


class PoolCollector:
    """Gauges of the pool, from the latest snapshot handed to `Metrics.set_pool`.

    Before the first `set_pool` and after `set_pool(None)` it reports `mjgate_store_up 0` and no
    other series, so a scrape during a Redis outage answers, and alerts on the pool's figures
    neither fire nor resolve on stale data. Its cost is the snapshot's: `Catalog.pool_snapshot`
    reads the pool in at most two round trips; building the families is O(accounts) only with
    per-account series on.
    """

    def __init__(self, *, per_account: bool) -> None:
        self.per_account = per_account
        self.snapshot: PoolSnapshot | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(None, describe=True)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.snapshot)

    def _families(self, pool: PoolSnapshot | None, *, describe: bool = False) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mjgate_store_up", "1 if this scrape read the pool from Redis, else 0"
        )
        if not describe:
            up.add_metric([], 0 if pool is None else 1)
        yield up
        yield from _pool_families(pool)
        if self.per_account:
            yield from _account_families(() if pool is None else pool.per_account)


def _pool_families(pool: PoolSnapshot | None) -> tuple[Metric, ...]:
    accounts = GaugeMetricFamily(
        "mjgate_accounts", "Accounts in the pool", labels=["plan", "state", "setting"]
    )
    fast_left = GaugeMetricFamily(
        "mjgate_pool_fast_seconds_remaining",
        "Fast GPU time left, not reserved, summed over every account whatever its state, seconds",
    )
    fast_usable = GaugeMetricFamily(
        "mjgate_pool_fast_seconds_usable",
        "Fast GPU time left, not reserved, on the accounts fast work can go to (active, setting"
        " fast; pacing may hold some for now), seconds",
    )
    slots = GaugeMetricFamily(
        "mjgate_pool_slots",
        "Slots of the active accounts: capacity and in use",
        labels=["mode", "kind"],
    )
    relax_capable = GaugeMetricFamily(
        "mjgate_pool_relax_capable_accounts",
        "Active accounts that can run relax work (not basic, with relax slots)",
    )
    staged = GaugeMetricFamily("mjgate_staged_tasks", "Tasks staged, waiting for a slot")
    eligible = GaugeMetricFamily(
        "mjgate_pool_accounts_eligible_now",
        "Active accounts pacing lets take new root work now (in hours, out of a gap, under the "
        "cap of some class they can run)",
    )
    if pool is not None:
        # Every (plan, state, setting) is reported, 0 included, so that a query such as
        # `mjgate_accounts{state="cooling"}` reads 0 rather than "no data".
        for plan in Plan:
            for state in AccountState:
                for setting in Setting:
                    count = pool.accounts.get((plan, state, setting), 0)
                    accounts.add_metric([plan.value, state.value, setting.value], count)
        fast_left.add_metric([], pool.fast_seconds_left)
        fast_usable.add_metric([], pool.fast_seconds_usable)
        for mode in SlotKind:
            slots.add_metric([mode.value, "capacity"], pool.slot_capacity.get(mode, 0))
            slots.add_metric([mode.value, "in_use"], pool.slots_in_use.get(mode, 0))
        relax_capable.add_metric([], pool.relax_capable)
        staged.add_metric([], pool.staged)
        eligible.add_metric([], pool.eligible_now)
    return accounts, fast_left, fast_usable, slots, relax_capable, staged, eligible


def _account_families(rows: Iterable[AccountFigures]) -> tuple[Metric, ...]:
    fast_left = GaugeMetricFamily(
        "mjgate_account_fast_seconds_remaining",
        "Fast GPU time left per account, not reserved, seconds",
        labels=["bot_id"],
    )
    in_flight = GaugeMetricFamily(
        "mjgate_account_in_flight", "Tasks holding a slot per account", labels=["bot_id", "mode"]
    )
    states = GaugeMetricFamily(
        "mjgate_account_state",
        "1 for each account, labelled with its current state",
        labels=["bot_id", "state"],
    )
    jobs_today = GaugeMetricFamily(
        "mjgate_account_jobs_today",
        "Jobs submitted since local midnight by an account with pacing (what its caps count)",
        labels=["bot_id", "mode"],
    )
    for row in rows:
        bot_id = str(row.bot_id)
        if row.paced:
            jobs_today.add_metric([bot_id, SlotKind.FAST.value], row.fast_today)
            jobs_today.add_metric([bot_id, SlotKind.RELAX.value], row.relax_today)
        fast_left.add_metric([bot_id], row.fast_seconds_left)
        in_flight.add_metric([bot_id, SlotKind.FAST.value], row.fast_in_flight)
        in_flight.add_metric([bot_id, SlotKind.RELAX.value], row.relax_in_flight)
        if row.state is not None:
            states.add_metric([bot_id, row.state.value], 1)
    return fast_left, in_flight, states, jobs_today
