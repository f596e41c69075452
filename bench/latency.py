"""Added latency at a fixed moderate rate.

The open-loop generator (bench.loadgen) sends at a fixed rate to mjgate and to the emulator
directly; added latency = mjgate's percentile minus the emulator's. The reference proxy's own
added latency is given beside it: what one bare hop on the same stack costs on this machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict

from redis.asyncio import Redis

from bench import loadgen
from bench.lab import Lab
from bench.report import Report, Row
from bench.traffic import HttpPlan, Side
from routing.pipe import Pipe

SCHEDULE_SLACK_MS = 5.0  # a generator later than this behind its schedule is reported
PINGS = 1_000


async def redis_round_trip(
    url: str, rate: float, connect: Callable[[str], Redis] = Redis.from_url
) -> float:
    """p50 of a Redis PING, one at a time at `rate` per second, on the connection mjgate's
    hot path uses (routing.pipe): what one round trip to Redis costs mjgate on this machine
    before any script runs. `connect` makes the client the pipe follows (its topology)."""
    client = connect(url)
    pipe = Pipe.of(client)
    times = []
    try:
        await pipe.call(b"PING")
        for _ in range(PINGS):
            started = time.perf_counter()
            await pipe.call(b"PING")
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
    finally:
        await pipe.aclose()
        await client.aclose()
    return loadgen.percentile(times, 0.5)


async def _measure(sides: dict[str, Side], plan: HttpPlan) -> dict[str, loadgen.LatencyResult]:
    results = {}
    for name, side in sides.items():
        results[name] = await loadgen.fixed_rate(
            f"{side.url}/api/v1/task",
            side.body,
            side.headers,
            rate=plan.rate,
            seconds=plan.latency_seconds,
        )
    return results


def latency_part(lab: Lab, plan: HttpPlan, report: Report) -> None:
    sides = {
        "emulator": Side.upstream(lab.emulator().url),
        "mjgate": Side.gateway(lab.main_gateway().url),
        "reference": Side.upstream(lab.proxy().url),
    }
    results = asyncio.run(_measure(sides, plan))
    ping = asyncio.run(redis_round_trip(lab.redis_url, plan.rate * 5))
    direct, gate, ref = results["emulator"], results["mjgate"], results["reference"]
    report.details["latency"] = {
        "generator": "bench.loadgen.fixed_rate (open loop, httpx + aiohttp transport)",
        "rate": plan.rate,
        "seconds": plan.latency_seconds,
        **{name: asdict(result) for name, result in results.items()},
        "redis_ping_p50_ms": ping,
    }
    errors = gate.errors + direct.errors
    notes = [f"{errors} failed requests"] if errors else []
    lag = max(r.max_send_lag_ms for r in results.values())
    if lag > SCHEDULE_SLACK_MS:
        notes.append(f"generator fell up to {lag:.1f} ms behind its schedule (busy machine)")
    if gate.server_timing_p50_ms:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in gate.server_timing_p50_ms.items())
        notes.append(f"mjgate's Server-Timing p50 (ms): {parts}")
    rate = f"{plan.rate:g} req/s"
    for label, limit in (("p50", 1.0), ("p99", 5.0)):
        ours, theirs = getattr(gate, f"{label}_ms"), getattr(direct, f"{label}_ms")
        report.add(
            Row(
                part="latency",
                metric=f"added latency {label} at {rate}",
                mjgate=ours,
                reference=theirs,
                value=ours - theirs,
                unit="ms",
                target=f"<= {limit:g} ms",
                passed=ours - theirs <= limit and not errors,
                note="; ".join(notes),
            )
        )
    report.add(
        Row(
            part="latency",
            metric="Redis round trip (PING) p50",
            mjgate=None,
            reference=None,
            value=ping,
            unit="ms",
            note="the floor under each of the Redis round trips a create makes in a row",
        )
    )
    for label in ("p50", "p99"):
        hop, theirs = getattr(ref, f"{label}_ms"), getattr(direct, f"{label}_ms")
        report.add(
            Row(
                part="latency",
                metric=f"reference proxy added {label} at {rate}",
                mjgate=None,
                reference=hop,
                value=hop - theirs,
                unit="ms",
                note="one bare hop on the same stack, for scale",
            )
        )
