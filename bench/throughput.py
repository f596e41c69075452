"""Throughput at a fixed concurrency (wrk): creates, and client polls of fresh tasks.

- create: wrk POSTs an imagine to mjgate and to the reference proxy, both in front of the
  instant emulator. Runs alternate reference, mjgate, mjgate, reference (ABBA), so a drift in
  the emulator or the machine hits both sides alike; each side's figure is its runs' mean.
- poll: wrk GETs tasks mjgate created (answered from its record: the instant emulator
  finished them at once, and a fresh record is never stale anyway) and, on the reference
  proxy, tasks the emulator created (every GET forwarded).

Beside requests/s, each run records the CPU time the server process (mjgate or the proxy)
and the emulator used per request (/proc/<pid>/stat): unlike requests/s, it barely moves
when other work shares the machine, and it says where a ratio comes from.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import wrk
from bench.lab import Lab
from bench.procs import Service
from bench.report import Report, Row
from bench.traffic import HttpPlan, Side, metric_sum, scrape


@dataclass(frozen=True)
class Target:
    url: str
    script: Path
    server: Service  # the process under test (mjgate or the reference proxy)
    upstream: Service  # the emulator behind it


@dataclass(frozen=True)
class Run:
    result: wrk.WrkResult
    server_cpu_ms: float | None  # per request
    upstream_cpu_ms: float | None


def _cpu(service: Service) -> float:
    return service.cpu_seconds() or 0.0


def measure(wrk_path: str, plan: HttpPlan, target: Target, seconds: float) -> Run:
    server, upstream = _cpu(target.server), _cpu(target.upstream)
    result = wrk.run(
        wrk_path,
        target.url,
        target.script,
        connections=plan.connections,
        threads=plan.threads,
        seconds=seconds,
    )
    requests = max(1, result.requests)
    return Run(
        result,
        round((_cpu(target.server) - server) * 1000 / requests, 3),
        round((_cpu(target.upstream) - upstream) * 1000 / requests, 3),
    )


def interleaved(wrk_path: str, plan: HttpPlan, targets: dict[str, Target]) -> dict[str, list[Run]]:
    """Warm every target up, then measure them in turn, every other round in reverse order
    (ABBA for two, ABCCBA for three): a drift of the emulator or the machine hits all alike."""
    for target in targets.values():
        measure(wrk_path, plan, target, plan.warmup_seconds)
    runs: dict[str, list[Run]] = {name: [] for name in targets}
    names = list(targets)
    for round_ in range(plan.rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            runs[name].append(measure(wrk_path, plan, targets[name], plan.run_seconds))
    return runs


def compare(
    wrk_path: str, plan: HttpPlan, reference: Target, gateway: Target
) -> tuple[list[Run], list[Run]]:
    """Warm both sides up, then measure them in ABBA order."""
    runs = interleaved(wrk_path, plan, {"reference": reference, "mjgate": gateway})
    return runs["reference"], runs["mjgate"]


def mean(runs: list[Run], pick: str) -> float:
    values = [getattr(run, pick) for run in runs if getattr(run, pick) is not None]
    return statistics.fmean(values) if values else float("nan")


def rate(runs: list[Run]) -> float:
    return statistics.fmean(run.result.requests_per_second for run in runs)


def errors(name: str, runs: list[Run]) -> str:
    bad = sum(run.result.non_2xx + run.result.socket_errors for run in runs)
    total = sum(run.result.requests for run in runs)
    return f"{name}: {bad} of {total} answers not 2xx or failed; " if bad else ""


def _details(plan: HttpPlan, refs: list[Run], gates: list[Run]) -> dict[str, Any]:
    return {
        "wrk": {"connections": plan.connections, "threads": plan.threads},
        "seconds": plan.run_seconds,
        "rounds": plan.rounds,
        "reference": [asdict(run) for run in refs],
        "mjgate": [asdict(run) for run in gates],
    }


def _rows(
    report: Report,
    part: str,
    plan: HttpPlan,
    refs: list[Run],
    gates: list[Run],
    target: float,
    note: str,
) -> None:
    ratio = rate(gates) / rate(refs)
    report.add(
        Row(
            part=part,
            metric=f"{part} throughput, {plan.connections} connections",
            mjgate=rate(gates),
            reference=rate(refs),
            value=ratio,
            unit="x",
            target=f">= {target:g}x",
            passed=ratio >= target and not note,
            note=note.rstrip("; "),
            side_unit="req/s",
        )
    )
    gate_cpu, ref_cpu = mean(gates, "server_cpu_ms"), mean(refs, "server_cpu_ms")
    report.add(
        Row(
            part=part,
            metric=f"{part}: server CPU per request",
            mjgate=gate_cpu,
            reference=ref_cpu,
            value=gate_cpu / ref_cpu if ref_cpu else None,
            unit="x",
            note=f"emulator CPU per request: {mean(refs, 'upstream_cpu_ms'):.3f} ms "
            f"(reference runs), {mean(gates, 'upstream_cpu_ms'):.3f} ms (mjgate runs)",
            side_unit="ms",
        )
    )


def create_part(lab: Lab, wrk_path: str, plan: HttpPlan, report: Report) -> None:
    emulator, proxy, gateway = lab.emulator(), lab.proxy(), lab.main_gateway()
    ref_side, gate_side = Side.upstream(proxy.url), Side.gateway(gateway.url)
    work = lab.workdir
    reference = Target(
        f"{proxy.url}/api/v1/task",
        wrk.post_script(work / "create-reference.lua", ref_side.body, ref_side.headers),
        proxy,
        emulator,
    )
    target = Target(
        f"{gateway.url}/api/v1/task",
        wrk.post_script(work / "create-mjgate.lua", gate_side.body, gate_side.headers),
        gateway.service,
        emulator,
    )
    refs, gates = compare(wrk_path, plan, reference, target)
    staged = metric_sum(scrape(gateway.url), "mjgate_tasks_created_total", decision="staged")
    note = errors("reference", refs) + errors("mjgate", gates)
    if staged:
        note += f"{staged:.0f} tasks staged (pool too small); "
    report.details["create"] = {**_details(plan, refs, gates), "staged": staged}
    _rows(report, "create", plan, refs, gates, 0.6, note)


def poll_part(lab: Lab, wrk_path: str, plan: HttpPlan, report: Report) -> None:
    emulator, proxy, gateway = lab.emulator(), lab.proxy(), lab.main_gateway()
    targets = []
    for name, side, server in (
        ("reference", Side.upstream(proxy.url), proxy),
        ("mjgate", Side.gateway(gateway.url), gateway.service),
    ):
        paths = [f"/api/v1/task/{task_id}" for task_id in side.create_ids(plan.poll_tasks)]
        script = wrk.get_script(lab.workdir / f"poll-{name}.lua", paths, side.headers)
        targets.append(Target(side.url, script, server, emulator))
    refs, gates = compare(wrk_path, plan, targets[0], targets[1])
    note = errors("reference", refs) + errors("mjgate", gates)
    report.details["poll"] = {**_details(plan, refs, gates), "tasks": plan.poll_tasks}
    _rows(report, "poll", plan, refs, gates, 1.0, note)
