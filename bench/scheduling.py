"""The scheduling part: how much of the pool's slot-time a burst wastes, per client behaviour.

A burst of N fast imagines on a pool of C fast slots (2 standard accounts of 3 slots), the
emulator taking exactly T seconds per task, in three client behaviours, each on a fresh mjgate
(nothing learnt yet) and a fresh emulator; then the silent behaviour again with durations
spread around T (lognormal, spread 0.2, seeded: `emulator --task-seconds T --spread 0.2`):

- `webhooks`: MJGATE_PUBLIC_URL set, GoAPI's webhooks reach mjgate; clients never poll;
- `polling`: no webhooks; each client GETs its task once a second until it ends;
- `silent`: no webhooks and clients that never poll (a firewalled deployment, n8n flows that
  wait for their own webhook): only the completion tracker learns that tasks ended.

Figures: makespan (burst sent to the last settle) / optimal (ceil(N / C) x T); dead slot time
per task (settle minus the emulator's end, p50 and p99); upstream GETs per task (the emulator's
count). Settle times come from mjgate's task records in Redis, ends from the emulator's clock:
both processes run on this machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from bench.lab import CLIENT_KEY, GOAPI_KEY, Lab, new_prefix
from bench.procs import Service, child_env, free_port
from bench.report import Report, Row
from gateway.taskrecord import TaskRecord
from routing.keys import Keys

BEHAVIOURS = ("webhooks", "polling", "silent", "silent-spread")
SPREAD = 0.2
ACCOUNTS = ((8101, 3), (8102, 3))  # (bot_id, fast slots): C = 6


@dataclass(frozen=True)
class SchedulingPlan:
    tasks: int = 30
    task_seconds: float = 3.0
    interval: float = 2.0  # MJGATE_TRACK_INTERVAL, the default

    @classmethod
    def quick(cls) -> SchedulingPlan:
        return cls(tasks=12, task_seconds=1.0)

    @property
    def slots(self) -> int:
        return sum(slots for _, slots in ACCOUNTS)

    @property
    def optimal(self) -> float:
        return math.ceil(self.tasks / self.slots) * self.task_seconds


@dataclass(frozen=True)
class Outcome:
    makespan: float
    dead: list[float]
    gets: list[int]
    failed: int


def _emulator(lab: Lab, name: str, plan: SchedulingPlan, spread: float) -> Service:
    path = lab.workdir / "scheduling-accounts.json"
    path.write_text(json.dumps([
        {"bot_id": bot_id, "plan": "standard", "setting": "fast", "fast_seconds": 1e9,
         "fast_slots": slots, "relax_slots": 3, "name": f"sched-{bot_id}"}
        for bot_id, slots in ACCOUNTS
    ]))  # fmt: skip
    port = free_port()
    args = [sys.executable, "-m", "emulator", "--port", str(port), "--accounts", str(path),
            "--task-seconds", str(plan.task_seconds)]  # fmt: skip
    if spread:
        args += ["--spread", str(spread), "--seed", "1"]
    return lab.services.start(
        name, args, port=port, ready_path="/_emulator/health", env=child_env({})
    )


def _gateway(
    lab: Lab, name: str, upstream: Service, plan: SchedulingPlan, webhooks: bool
) -> tuple[Service, str]:
    pool = lab.workdir / "scheduling-pool.yaml"
    pool.write_text("accounts:\n" + "".join(
        f"  - {{bot_id: {bot_id}, plan: standard, fast_slots: {slots}, relax_slots: 3}}\n"
        for bot_id, slots in ACCOUNTS
    ))  # fmt: skip
    port = free_port()
    prefix = new_prefix(name)
    lab.prefixes.append(prefix)
    env = {
        "REDIS_URL": lab.redis_url, "MJGATE_REDIS_PREFIX": prefix, "GOAPI_API_KEY": GOAPI_KEY,
        "GOAPI_BASE_URL": upstream.url, "MJGATE_HOST": "127.0.0.1", "MJGATE_PORT": str(port),
        "MJGATE_CLIENT_KEYS": CLIENT_KEY, "MJGATE_POOL_FILE": str(pool),
        "MJGATE_LOG_LEVEL": "warning", "MJGATE_DATA_DIR": str(lab.workdir / "mjgate"),
        "MJGATE_TRACK_INTERVAL": str(plan.interval), "MJGATE_STAGED_LIMIT": "10000",
    }  # fmt: skip
    if webhooks:
        env["MJGATE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    script = sys.executable.rsplit("/", 1)[0] + "/mjgate"
    service = lab.services.start(
        name, [script, "serve"], port=port, ready_path="/readyz", env=child_env(env)
    )
    return service, prefix


async def _burst(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(n: int) -> str:
            body = {"model": "midjourney", "task_type": "imagine",
                    "input": {"prompt": f"scheduling {n} --fast"}}  # fmt: skip
            answer = await client.post(
                f"{url}/api/v1/task", json=body, headers={"x-api-key": CLIENT_KEY}
            )
            answer.raise_for_status()
            task_id: str = answer.json()["data"]["task_id"]
            return task_id

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _poll_until_done(url: str, ids: list[str], deadline: float) -> None:
    async with httpx.AsyncClient(timeout=30) as client:

        async def poller(task_id: str, offset: float) -> None:
            await asyncio.sleep(offset)
            while time.monotonic() < deadline:
                answer = await client.get(
                    f"{url}/api/v1/task/{task_id}", headers={"x-api-key": CLIENT_KEY}
                )
                if answer.json()["data"]["status"] in ("completed", "failed"):
                    return
                await asyncio.sleep(1.0)

        await asyncio.gather(*(poller(t, i / len(ids)) for i, t in enumerate(ids)))


def _records(client: redis.Redis, prefix: str, ids: list[str]) -> list[TaskRecord | None]:
    keys = Keys(prefix)
    out: list[TaskRecord | None] = []
    for task_id in ids:
        status, blob = client.hmget(keys.task(task_id), "s", "d")
        if isinstance(status, bytes) and isinstance(blob, bytes):
            out.append(TaskRecord.decode(task_id, status.decode(), blob))
        else:
            out.append(None)
    return out


def _settled_at(record: TaskRecord) -> float:
    return float(next(e["at"] for e in record.history if e["what"] in ("completed", "failed")))


def run_behaviour(lab: Lab, behaviour: str, plan: SchedulingPlan) -> Outcome:
    spread = SPREAD if behaviour.endswith("-spread") else 0.0
    emulator = _emulator(lab, f"emulator-{behaviour}", plan, spread)
    gateway, prefix = _gateway(lab, f"mjgate-{behaviour}", emulator, plan, behaviour == "webhooks")
    client = lab.sync_redis()
    try:
        started = time.time()
        ids = asyncio.run(_burst(gateway.url, plan.tasks))
        limit = time.monotonic() + plan.optimal * 4 + 60
        if behaviour == "polling":
            asyncio.run(_poll_until_done(gateway.url, ids, limit))
        while time.monotonic() < limit:
            records = _records(client, prefix, ids)
            if all(r is not None and r.terminal for r in records):
                break
            time.sleep(0.1)
        records = _records(client, prefix, ids)
        upstream = {
            row["task_id"]: row
            for row in httpx.get(f"{emulator.url}/_emulator/tasks", timeout=30).json()["tasks"]
        }
    finally:
        client.close()
        lab.stop(gateway)
        lab.stop(emulator)
    done = [r for r in records if r is not None and r.terminal and r.upstream_id]
    settles = [_settled_at(r) for r in done]
    dead = [_settled_at(r) - float(upstream[r.upstream_id or ""]["ended_at"]) for r in done]
    gets = [len(upstream[r.upstream_id or ""]["gets"]) for r in done]
    makespan = (max(settles) - started) if settles else float("nan")
    return Outcome(makespan, dead, gets, plan.tasks - sum(r.status == "completed" for r in done))


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scheduling_part(lab: Lab, plan: SchedulingPlan, report: Report) -> None:
    details: dict[str, Any] = {"plan": {"tasks": plan.tasks, "slots": plan.slots,
                                        "task_seconds": plan.task_seconds,
                                        "interval": plan.interval,
                                        "optimal_seconds": plan.optimal}}  # fmt: skip
    for behaviour in BEHAVIOURS:
        spread = behaviour.endswith("-spread")
        outcome = run_behaviour(lab, behaviour, plan)
        ratio = outcome.makespan / plan.optimal
        p50, p99 = _quantile(outcome.dead, 0.5), _quantile(outcome.dead, 0.99)
        per_task = statistics.fmean(outcome.gets) if outcome.gets else float("nan")
        details[behaviour] = {
            "makespan": round(outcome.makespan, 3),
            "ratio": round(ratio, 3),
            "dead_p50": round(p50, 3),
            "dead_p99": round(p99, 3),
            "gets_per_task": round(per_task, 3),
            "failed": outcome.failed,
        }
        webhooks = behaviour == "webhooks"
        note = f"{plan.tasks} tasks of {plan.task_seconds:g} s on {plan.slots} slots"
        if behaviour.endswith("-spread"):
            note += f", spread {SPREAD:g} (the optimum assumes exactly T: informational)"
        report.add(Row(part="scheduling", metric=f"makespan / optimal ({behaviour})",
                       mjgate=outcome.makespan, reference=plan.optimal, value=ratio, unit="x",
                       target="<= 1.05" if webhooks else "<= 1.15" if not spread else "",
                       passed=(ratio <= (1.05 if webhooks else 1.15) and not outcome.failed)
                       if not spread else None,
                       note=note, side_unit="s"))  # fmt: skip
        dead_target = 0.1 if webhooks else 1.0
        report.add(Row(part="scheduling", metric=f"dead slot time p50 ({behaviour})",
                       mjgate=p50, reference=None, value=p50, unit="s",
                       target=f"<= {dead_target:g} s", passed=p50 <= dead_target,
                       note=f"p99 {p99:.3f} s"))  # fmt: skip
        get_target = 0.2 if webhooks else plan.task_seconds / plan.interval + 2
        report.add(Row(part="scheduling", metric=f"upstream GETs per task ({behaviour})",
                       mjgate=per_task, reference=None, value=per_task, unit="",
                       target=f"<= {get_target:g}", passed=per_task <= get_target))  # fmt: skip
    report.details["scheduling"] = details
