"""Upstream calls per client poll, when clients poll every task once a second.

Against a slow emulator whose tasks stay in flight for the whole window (the worst case: a
finished task is never refreshed again), N tasks are created through a fresh mjgate, then
each is polled once a second. mjgate's own `mjgate_upstream_requests_total{op="get"}`
(client-triggered refreshes and the reconciler alike) over the window, divided by the number
of client polls, is the figure. No MJGATE_PUBLIC_URL: no webhooks, so polls and the
reconciler are mjgate's only news; other settings are the defaults (a record older than
MJGATE_POLL_STALE_SECONDS = 5 s is refreshed).
"""

from __future__ import annotations

import asyncio

from bench import loadgen
from bench.lab import Lab
from bench.report import Report, Row
from bench.traffic import HttpPlan, Side, metric_sum, scrape

IN_FLIGHT_SECONDS = 600.0  # the slow emulator's pending and processing times, each


def upstream_per_poll(lab: Lab, plan: HttpPlan, report: Report) -> None:
    slow = lab.emulator("emulator-slow", pending=IN_FLIGHT_SECONDS, processing=IN_FLIGHT_SECONDS)
    gateway = lab.gateway("mjgate-poll", upstream=slow)
    try:
        side = Side.gateway(gateway.url)
        ids = side.create_ids(plan.pollers)
        before = metric_sum(scrape(gateway.url), "mjgate_upstream_requests_total", op="get")
        ok, failed = asyncio.run(
            loadgen.poll_every_second(gateway.url, ids, side.headers, seconds=plan.poll_seconds)
        )
        after = metric_sum(scrape(gateway.url), "mjgate_upstream_requests_total", op="get")
    finally:
        lab.stop(gateway.service)
        lab.stop(slow)
    polls, gets = ok + failed, after - before
    per_poll = gets / max(1, polls)
    report.details["poll_upstream"] = {
        "tasks": len(ids),
        "seconds": plan.poll_seconds,
        "client_polls": polls,
        "failed_polls": failed,
        "upstream_gets": gets,
    }
    note = (
        f"{len(ids)} in-flight tasks polled 1/s for {plan.poll_seconds:g} s: "
        f"{gets:.0f} upstream GETs for {polls} polls"
    )
    report.add(
        Row(
            part="poll",
            metric="upstream calls per client poll (1 poll/s)",
            mjgate=per_poll,
            reference=None,
            value=per_poll,
            unit="",
            target="<= 0.2",
            passed=per_poll <= 0.2 and not failed,
            note=note + (f"; {failed} polls failed" if failed else ""),
        )
    )
