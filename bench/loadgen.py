"""The bench's own load: an open-loop generator at a fixed rate, and per-second pollers.

wrk2 (fixed-rate wrk) is not in Debian, and wrk's closed loop measures latency at saturation,
not at a moderate rate. `fixed_rate` sends request i at start + i/rate whether or not earlier
ones have answered (open loop), on httpx with the aiohttp transport, and times each from the
moment it is sent to the moment its whole body is read (time.perf_counter). It runs on the
standard asyncio loop, whose clock has full resolution. It reports how late sends were against
the schedule: a generator that cannot keep its rate would hide latency (coordinated omission).
The generator's own garbage collector is off while it measures: a full collection of its heap
stalls it for 20-30 ms, which would land in both sides' tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from bench.reference_proxy import default_transport


@dataclass(frozen=True)
class LatencyResult:
    sent: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float
    server_timing_p50_ms: dict[str, float]  # the answers' Server-Timing entries, if any


def server_timing(header: str) -> dict[str, float]:
    """`auth;dur=0.06, route;dur=0.97` -> {"auth": 0.06, "route": 0.97} (milliseconds)."""
    entries = {}
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    entries[name] = float(value)
    return entries


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (not necessarily sorted)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def client(timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=default_transport(256), timeout=timeout)


async def fixed_rate(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    rate: float,
    seconds: float,
    warmup_seconds: float = 1.0,
) -> LatencyResult:
    """POST `body` to `url` at `rate` per second; the first `warmup_seconds` aren't counted."""
    latencies: list[float] = []
    timings: dict[str, list[float]] = {}
    errors = 0
    lag = 0.0
    warm = round(rate * warmup_seconds)
    total = warm + round(rate * seconds)
    all_headers = {"content-type": "application/json", **headers}
    gc.collect()
    gc.disable()
    try:
        async with client() as http:

            async def one(index: int) -> None:
                nonlocal errors
                sent = time.perf_counter()
                try:
                    answer = await http.post(url, content=body, headers=all_headers)
                except httpx.HTTPError:
                    answer = None
                done = time.perf_counter()
                if index < warm:
                    return
                if answer is None or answer.status_code != 200:
                    errors += 1
                    return
                latencies.append(done - sent)
                for name, ms in server_timing(answer.headers.get("server-timing", "")).items():
                    timings.setdefault(name, []).append(ms)

            pending: set[asyncio.Task[None]] = set()
            start = time.perf_counter() + 0.05
            for index in range(total):
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if index >= warm:
                    lag = max(lag, time.perf_counter() - due)
                task = asyncio.create_task(one(index))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
    finally:
        gc.enable()
    ms = [value * 1000 for value in latencies]
    return LatencyResult(
        sent=total - warm,
        errors=errors,
        p50_ms=percentile(ms, 0.50),
        p90_ms=percentile(ms, 0.90),
        p99_ms=percentile(ms, 0.99),
        max_ms=max(ms, default=float("nan")),
        max_send_lag_ms=lag * 1000,
        server_timing_p50_ms={name: percentile(v, 0.5) for name, v in timings.items()},
    )


async def create_tasks(
    url: str, body: bytes, headers: Mapping[str, str], count: int, *, concurrency: int = 16
) -> list[dict[str, object]]:
    """Create `count` tasks; returns each answer's `data` (the task object)."""
    tasks: list[dict[str, object]] = []
    all_headers = {"content-type": "application/json", **headers}
    async with client(30.0) as http:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with semaphore:
                answer = await http.post(url, content=body, headers=all_headers)
            if answer.status_code != 200:
                raise RuntimeError(f"create answered {answer.status_code}: {answer.text[:300]}")
            tasks.append(answer.json()["data"])

        await asyncio.gather(*(one() for _ in range(count)))
    return tasks


async def poll_every_second(
    base_url: str, task_ids: Sequence[str], headers: Mapping[str, str], *, seconds: float
) -> tuple[int, int]:
    """GET every task once a second for `seconds` (pollers spread over the second, as
    independent clients would be); returns (polls answered 200, other answers)."""
    ok = failed = 0
    async with client() as http:

        async def poller(task_id: str, offset: float) -> None:
            nonlocal ok, failed
            start = time.perf_counter() + offset
            for tick in range(round(seconds)):
                delay = start + tick - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                answer = await http.get(f"{base_url}/api/v1/task/{task_id}", headers=headers)
                if answer.status_code == 200:
                    ok += 1
                else:
                    failed += 1

        count = max(1, len(task_ids))
        await asyncio.gather(
            *(poller(task_id, 1.0 + i / count) for i, task_id in enumerate(task_ids))
        )
    return ok, failed
