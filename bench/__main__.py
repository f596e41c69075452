"""`python -m bench` (`make bench`): measure mjgate against its targets (docs/benchmarks.md).

    python -m bench                          # every part, about 5 minutes on 2 cores
    python -m bench --quick --only redis     # a smoke run, a few seconds
    python -m bench --only create,latency --connections 64
    python -m bench --only topologies        # Sentinel and Cluster against standalone
    python -m bench --only instructions      # instructions per decision, under callgrind

Parts: latency, create, poll, scheduling, memory, redis, scrape, topologies, instructions (run
in that order; topologies starts its own Sentinel setup and Redis Cluster, instructions its own
redis-server under valgrind's callgrind). Prints a table and writes
bench/results.json. Every process the bench starts listens on a free 127.0.0.1 port and is
stopped on exit (errors and Ctrl-C included); every Redis key it writes is under a prefix it
deletes, or on a server it started and stops.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

from bench import (
    decisions,
    instructions,
    latency,
    memory,
    polls,
    report,
    scheduling,
    scrape,
    staging,
    throughput,
    topologies,
    wrk,
)
from bench.lab import Lab, resolve_redis
from bench.procs import BenchError, Services, raise_on_sigterm
from bench.traffic import HttpPlan

# Latency first, while the emulator holds few tasks (a big heap makes its GC pauses longer).
PARTS = (
    "latency",
    "create",
    "poll",
    "scheduling",
    "memory",
    "redis",
    "scrape",
    "topologies",
    "instructions",
)
HERE = Path(__file__).resolve().parent
BUSY_LOAD = 0.5  # a 1-minute load average above this at start flags the run as disturbed


@dataclasses.dataclass(frozen=True)
class RedisPlan:
    sizes: tuple[int, ...] = (10, 1_000, 100_000)
    tasks: int = 3_000  # reservations per commandstats window
    repeats: int = 5  # windows per script and pool size; the median is the figure
    memory_accounts: int = 100_000
    records: int = 200

    @classmethod
    def quick(cls) -> RedisPlan:
        return cls((10, 1_000, 10_000), tasks=1_000, repeats=1, memory_accounts=10_000, records=50)


def _parts(value: str) -> tuple[str, ...]:
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    if not chosen or chosen - set(PARTS):
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)} (got {value!r})")
    return tuple(part for part in PARTS if part in chosen)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--only", type=_parts, default=PARTS, metavar="PART,...", help="parts to run")
    p.add_argument("--quick", action="store_true", help="short runs: a smoke check")
    p.add_argument("--redis-url", help="default: REDIS_URL, else 127.0.0.1:6379, else embedded")
    p.add_argument("--connections", type=int, help="wrk connections (32)")
    p.add_argument("--threads", type=int, help="wrk threads (1)")
    p.add_argument("--rate", type=float, help="the latency part's rate (200 req/s)")
    p.add_argument("--output", type=Path, default=HERE / "results.json")
    return p


def _http_plan(args: argparse.Namespace) -> HttpPlan:
    plan = HttpPlan.quick() if args.quick else HttpPlan()
    changes = {
        name: getattr(args, name)
        for name in ("connections", "threads", "rate")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(plan, **changes)


async def _redis_part(url: str, rep: report.Report, plan: RedisPlan) -> None:
    client = Redis.from_url(url)
    try:
        await decisions.decisions_part(
            client, rep, sizes=plan.sizes, tasks=plan.tasks, repeats=plan.repeats
        )
        await staging.staging_part(
            client, rep, keys=1_000, per_key=3, tasks=plan.tasks, repeats=plan.repeats
        )
    finally:
        await client.aclose()


async def _memory_part(
    url: str, rep: report.Report, plan: RedisPlan, records: tuple[str, list[str]]
) -> None:
    client = Redis.from_url(url)
    try:
        task_figures = await memory.record_memory(client, *records)
        account_figures = await memory.account_memory(client, plan.memory_accounts)
        memory.memory_rows(rep, account_figures, task_figures)
    finally:
        await client.aclose()


def _redis_info(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = client.info("server")
        return info
    except redis.RedisError:
        return {}
    finally:
        client.close()


def _run_parts(steps: dict[str, Callable[[], None]], rep: report.Report) -> None:
    for part, step in steps.items():
        print(f"bench: {part} ...", flush=True)
        started = time.monotonic()
        try:
            step()
        except BenchError as exc:
            rep.errors[part] = str(exc)
            print(f"bench: {part} failed: {exc}", flush=True)
        except Exception as exc:  # one broken part must not hide the others' figures
            rep.errors[part] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(f"bench: {part} done in {time.monotonic() - started:.0f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    parts: Sequence[str] = args.only
    http_plan = _http_plan(args)
    redis_plan = RedisPlan.quick() if args.quick else RedisPlan()
    workdir = HERE / ".work"
    workdir.mkdir(exist_ok=True)
    wrk_path = wrk.ensure_wrk() if {"create", "poll", "topologies"} & set(parts) else ""
    rep = report.Report()
    started = time.monotonic()
    load = os.getloadavg()[0]
    if load > BUSY_LOAD:
        print(
            f"bench: warning: the machine is busy (load average {load:.2f} on "
            f"{os.cpu_count()} cores): figures will be lower and noisier",
            flush=True,
        )
    with Services(workdir) as services:
        redis_url = resolve_redis(args.redis_url, workdir, services)
        lab = Lab(services, workdir, redis_url)

        def redis_alone() -> None:
            lab.stop_processes()  # no mjgate background loop in the commandstats windows
            asyncio.run(_redis_part(redis_url, rep, redis_plan))

        def poll() -> None:
            throughput.poll_part(lab, wrk_path, http_plan, rep)
            polls.upstream_per_poll(lab, http_plan, rep)

        steps: dict[str, Callable[[], None]] = {
            "create": lambda: throughput.create_part(lab, wrk_path, http_plan, rep),
            "latency": lambda: latency.latency_part(lab, http_plan, rep),
            "poll": poll,
            "scheduling": lambda: scheduling.scheduling_part(
                lab,
                scheduling.SchedulingPlan.quick() if args.quick else scheduling.SchedulingPlan(),
                rep,
            ),
            "memory": lambda: asyncio.run(
                _memory_part(
                    redis_url, rep, redis_plan, memory.create_records(lab, redis_plan.records)
                )
            ),
            "redis": redis_alone,
            "scrape": lambda: asyncio.run(scrape.scrape_part(redis_url, rep, redis_plan.sizes)),
            "instructions": lambda: asyncio.run(
                instructions.instructions_part(rep, workdir, 200 if args.quick else 1_000)
            ),
            "topologies": lambda: topologies.topologies_part(
                lab,
                wrk_path,
                topologies.quick_plan(http_plan) if args.quick else http_plan,
                rep,
            ),
        }
        try:
            _run_parts({part: steps[part] for part in parts}, rep)
        finally:
            lab.cleanup()
        machine = report.machine(_redis_info(redis_url))
    machine["load_average_at_start"] = round(load, 2)
    settings = {
        "parts": list(parts),
        "quick": args.quick,
        "http": dataclasses.asdict(http_plan),
        "redis": dataclasses.asdict(redis_plan),
        "seconds": round(time.monotonic() - started, 1),
    }
    print()
    print(report.table(rep.rows))
    print(
        f"\nmachine: {machine['nproc']} cores ({machine['cpu']}), Python {machine['python']}, "
        f"Redis {machine['redis_version']}, load average at start {load:.2f}; "
        f"{settings['seconds']} s"
    )
    report.write(args.output, rep, machine_info=machine, settings=settings)
    print(f"written: {args.output}")
    for part, error in rep.errors.items():
        print(f"error in {part}: {error}")
    return 1 if rep.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    raise_on_sigterm()
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench: {exc}")
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped")
        return 130
    except SystemExit as exc:  # SIGTERM (raise_on_sigterm), after every cleanup ran
        print("bench: terminated; every process it started was stopped")
        raise exc


if __name__ == "__main__":
    raise SystemExit(main())
