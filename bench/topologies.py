"""Create throughput and added latency on Redis Sentinel and Redis Cluster against standalone,
measured in the same run, and what MJGATE_REDIS_MIN_REPLICAS=1 costs on each.

The part starts a 1 + 2 Sentinel setup (three sentinels) and a 3 + 3 Cluster
(gateway.local.topologies, in a folder under bench/.work), a fresh instant emulator, and one
mjgate per configuration: standalone (the lab's Redis), Sentinel, Cluster, and both again with
MJGATE_REDIS_MIN_REPLICAS=1. Every mjgate runs with the create part's settings and the
default MJGATE_REDIS_TIMEOUT. Then, as the create and latency parts do:

- throughput: wrk POSTs imagines to each mjgate, every other round in reverse order
  (standalone, Sentinel, ..., ..., Sentinel, standalone), each figure its runs' mean, as a
  ratio of standalone's;
- added latency: the open-loop generator at the fixed rate, against the emulator directly,
  then each mjgate; a topology's added p50 / p99 against standalone's, as a difference;
- a PING on the hot path's connection to each topology's primary, for scale.

At the end (errors and Ctrl-C included) the mjgate processes and the emulator stop, then
every server of both topologies is killed and their folder deleted: they keep nothing on disk,
so their keys go with them. The standalone mjgate's keys are under a lab prefix (deleted by
`Lab.cleanup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from redis.asyncio import Redis

from bench import loadgen, throughput, wrk
from bench.lab import Gateway, Lab
from bench.latency import SCHEDULE_SLACK_MS, redis_round_trip
from bench.procs import Service
from bench.report import Report, Row
from bench.traffic import HttpPlan, Side
from gateway.local.topologies import Cluster, SentinelSetup
from gateway.redisconn import redis_client
from gateway.settings import Settings

PART = "topologies"


@dataclass(frozen=True)
class Config:
    name: str
    topology: str  # standalone, sentinel or cluster
    min_replicas: int = 0

    @property
    def slug(self) -> str:
        return f"{self.topology}-replicas{self.min_replicas}"


STANDALONE = Config("standalone", "standalone")
CONFIGS = (
    STANDALONE,
    Config("Sentinel", "sentinel"),
    Config("Cluster", "cluster"),
    Config("Sentinel, min replicas 1", "sentinel", 1),
    Config("Cluster, min replicas 1", "cluster", 1),
)


def quick_plan(plan: HttpPlan) -> HttpPlan:
    """The smoke run: five configurations in about half a minute, topologies' start included."""
    return replace(plan, run_seconds=1.0, rounds=1, warmup_seconds=0.5, latency_seconds=1.0)


@contextlib.contextmanager
def started_topologies(folder: Path) -> Iterator[dict[str, str]]:
    """A Sentinel setup and a Cluster under `folder`: REDIS_URL by topology. Leaving kills
    every server (also one started before a failed start) and deletes `folder`."""
    sentinel = SentinelSetup(folder / "sentinel")
    cluster = Cluster(folder / "cluster")
    try:
        for path in (sentinel.folder, cluster.servers.folder):
            path.mkdir(parents=True)
        yield {"sentinel": sentinel.start().url, "cluster": cluster.start().url}
    finally:
        try:
            cluster.stop()
        finally:
            sentinel.stop()
            shutil.rmtree(folder, ignore_errors=True)


def _connect(url: str) -> Redis:
    return redis_client(Settings(redis_url=url))  # the service's client for that topology


def _gateways(lab: Lab, urls: dict[str, str], emulator: Service) -> dict[Config, Gateway]:
    return {
        config: lab.gateway(
            f"mjgate-{config.slug}",
            upstream=emulator,
            extra={
                "REDIS_URL": urls[config.topology],
                "MJGATE_REDIS_MIN_REPLICAS": str(config.min_replicas),
                "MJGATE_LEASE_SECONDS": "3600",  # as the create part's mjgate (Lab.main_gateway)
            },
        )
        for config in CONFIGS
    }


def _latency(
    emulator: Service, gateways: dict[Config, Gateway], plan: HttpPlan
) -> tuple[loadgen.LatencyResult, dict[Config, loadgen.LatencyResult]]:
    async def measure(side: Side) -> loadgen.LatencyResult:
        return await loadgen.fixed_rate(
            f"{side.url}/api/v1/task",
            side.body,
            side.headers,
            rate=plan.rate,
            seconds=plan.latency_seconds,
        )

    direct = asyncio.run(measure(Side.upstream(emulator.url)))
    return direct, {
        config: asyncio.run(measure(Side.gateway(gateway.url)))
        for config, gateway in gateways.items()
    }


def _throughput(
    lab: Lab, wrk_path: str, emulator: Service, gateways: dict[Config, Gateway], plan: HttpPlan
) -> dict[Config, list[throughput.Run]]:
    side = Side.gateway("")
    script = wrk.post_script(lab.workdir / f"create-{PART}.lua", side.body, side.headers)
    targets = {
        config.slug: throughput.Target(
            f"{gateway.url}/api/v1/task", script, gateway.service, emulator
        )
        for config, gateway in gateways.items()
    }
    runs = throughput.interleaved(wrk_path, plan, targets)
    return {config: runs[config.slug] for config in gateways}


def _throughput_rows(
    report: Report, plan: HttpPlan, runs: dict[Config, list[throughput.Run]]
) -> None:
    """Requests/s and mjgate's CPU per create, each as a ratio of standalone's."""
    base = throughput.rate(runs[STANDALONE])
    base_cpu = throughput.mean(runs[STANDALONE], "server_cpu_ms")
    for metric, pick, side_unit in (
        (f"create throughput, {plan.connections} connections", "rate", "req/s"),
        ("mjgate CPU per create", "cpu", "ms"),
    ):
        for config, config_runs in runs.items():
            ours, theirs = (
                (throughput.rate(config_runs), base)
                if pick == "rate"
                else (throughput.mean(config_runs, "server_cpu_ms"), base_cpu)
            )
            standalone = config is STANDALONE
            report.add(
                Row(
                    part=PART,
                    metric=f"{metric}, {config.name}",
                    mjgate=ours,
                    reference=None if standalone else theirs,
                    value=ours / theirs,
                    unit="x",
                    note=throughput.errors(config.name, config_runs) if pick == "rate" else "",
                    side_unit=side_unit,
                )
            )


def _latency_rows(
    report: Report,
    plan: HttpPlan,
    direct: loadgen.LatencyResult,
    results: dict[Config, loadgen.LatencyResult],
) -> None:
    lag = max(r.max_send_lag_ms for r in (direct, *results.values()))
    lagged = f"generator fell up to {lag:.1f} ms behind its schedule (busy machine)"
    for label in ("p50", "p99"):
        floor = getattr(direct, f"{label}_ms")
        base = getattr(results[STANDALONE], f"{label}_ms") - floor
        for config, result in results.items():
            added = getattr(result, f"{label}_ms") - floor
            notes = [f"{config.name}: {result.errors} failed requests"] if result.errors else []
            timing = result.server_timing_p50_ms
            if label == "p50" and timing:
                spans = ", ".join(
                    f"{k} {timing[k]:.2f}" for k in ("route", "record") if k in timing
                )
                notes.append(f"{config.name}: Server-Timing p50 (ms) {spans}")
            standalone = config is STANDALONE
            if lag > SCHEDULE_SLACK_MS and standalone:
                notes.append(lagged)  # once: the notes are listed by part
            report.add(
                Row(
                    part=PART,
                    metric=f"added latency {label} at {plan.rate:g} req/s, {config.name}"
                    + ("" if standalone else " vs standalone"),
                    mjgate=getattr(result, f"{label}_ms") if standalone else added,
                    reference=floor if standalone else base,
                    value=added if standalone else added - base,
                    unit="ms",
                    note="; ".join(notes),
                )
            )


def topologies_part(lab: Lab, wrk_path: str, plan: HttpPlan, report: Report) -> None:
    folder = lab.workdir / f"{PART}-{uuid.uuid4().hex[:8]}"
    with started_topologies(folder) as urls:
        urls = {"standalone": lab.redis_url, **urls}
        gateways: dict[Config, Gateway] = {}
        emulator = lab.emulator(f"emulator-{PART}")  # fresh: no earlier part's tasks
        try:
            gateways = _gateways(lab, urls, emulator)
            direct, latencies = _latency(emulator, gateways, plan)
            runs = _throughput(lab, wrk_path, emulator, gateways, plan)
            pings = {
                topology: asyncio.run(redis_round_trip(url, plan.rate * 5, _connect))
                for topology, url in urls.items()
            }
        finally:
            for gateway in gateways.values():
                lab.stop(gateway.service)
            lab.stop(emulator)
    _throughput_rows(report, plan, runs)
    _latency_rows(report, plan, direct, latencies)
    for topology, ping in pings.items():
        report.add(Row(PART, f"Redis round trip (PING) p50, {topology}", None, None, ping, "ms"))
    report.details[PART] = {
        "configurations": [asdict(config) for config in CONFIGS],
        "wrk": {"connections": plan.connections, "threads": plan.threads},
        "seconds": plan.run_seconds,
        "rounds": plan.rounds,
        "rate": plan.rate,
        "latency_seconds": plan.latency_seconds,
        "emulator_direct": asdict(direct),
        "latency": {config.slug: asdict(result) for config, result in latencies.items()},
        "throughput": {config.slug: [asdict(run) for run in r] for config, r in runs.items()},
        "redis_ping_p50_ms": pings,
    }
