"""Instructions per routing decision, counted by callgrind: a figure no busy machine moves.

The `redis` part's microseconds are Redis's own time, but on a shared VM a whole run can be
several times slower than another (docs/benchmarks.md): too noisy to tell a change of a few
per cent. Here a private redis-server (7+: Functions) runs under valgrind's callgrind,
counting only what runs inside `FCALL` (and `EVALSHA`, for a server without Functions): the
script's Lua and the commands it runs, no network, no client, no other process. Valgrind
counts every instruction the server executes, the same on any machine for the same binary
and the same calls.

Per pool (1,000 accounts unpaced; the same with pacing on every account, as the `redis`
part's paced pools): the accounts are loaded, the counts zeroed (`callgrind_control -z`),
`calls` reservations made (8 in flight), the counts dumped (`-d`) and read; then the same
for settling them. The figure is the dump's total over the calls.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.decisions import PACED_STEP_SECONDS, SteppingClock, paced_profile
from bench.pools import gather_limited, load_accounts, new_pool, task_id
from bench.procs import BenchError, free_port
from bench.report import Report, Row
from routing.model import Mode
from routing.results import Outcome
from routing.store import PoolStore

ACCOUNTS = 1_000
IN_FLIGHT = 8
COUNTED = ("fcallCommand", "evalShaCommand")  # the server functions whose work is counted


@dataclass(frozen=True)
class Counted:
    reserve: float  # instructions per reserve_root call
    settle: float  # instructions per settle call


class Callgrind:
    """A redis-server under callgrind, counting only inside COUNTED."""

    def __init__(self, workdir: Path, server: str) -> None:
        self.dir = workdir / "callgrind"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        toggles = [f"--toggle-collect={name}" for name in COUNTED]
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", *toggles,
             f"--callgrind-out-file={self.dir}/callgrind.out",
             server, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=(self.dir / "valgrind.log").open("wb"),
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    async def ready(self, redis: Redis, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"redis-server under valgrind exited ({self.dir}/valgrind.log)")
            try:
                await redis.ping()
                return
            except (OSError, RedisError):
                await asyncio.sleep(0.2)
        raise BenchError(f"redis-server under valgrind did not answer within {timeout:g} s")

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.process.pid)], check=True,
                       capture_output=True, timeout=120)  # fmt: skip

    async def count(self, work: Callable[[], Awaitable[object]]) -> int:
        """Instructions the server ran in COUNTED during `work`."""
        before = set(self.dir.glob("callgrind.out.*"))
        self._control("-z")
        await work()
        self._control("-d")
        dumps = sorted(set(self.dir.glob("callgrind.out.*")) - before, key=_dump_number)
        if not dumps:
            raise BenchError("callgrind wrote no dump")
        for line in dumps[-1].read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise BenchError(f"no totals in {dumps[-1]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _dump_number(path: Path) -> int:
    """callgrind.out.<pid>.<n>: the n-th dump."""
    return int(path.name.rsplit(".", 1)[1])


async def _pool(grind: Callgrind, redis: Redis, calls: int, paced: bool) -> Counted:
    clock = SteppingClock(time.time(), PACED_STEP_SECONDS)
    async with new_pool(redis, "instructions", clock=clock) as store:
        await load_accounts(store, ACCOUNTS, paced_profile(clock.now) if paced else None)
        ids = [task_id(f"task-{n}") for n in range(calls)]
        await gather_limited([partial(_reserve, store, task_id(f"warm-{n}")) for n in range(100)])
        reserves = [partial(_reserve, store, task) for task in ids]
        settles = [partial(store.settle, task, Outcome.COMPLETED) for task in ids]
        reserved = await grind.count(lambda: gather_limited(reserves, IN_FLIGHT))
        settled = await grind.count(lambda: gather_limited(settles, IN_FLIGHT))
    return Counted(reserved / calls, settled / calls)


async def _reserve(store: PoolStore, task: str) -> None:
    await store.reserve_root(task, mode=Mode.FAST, cost=60, client_id="bench", lease_seconds=3600,
                             staged_limit=50, staged_timeout=900)  # fmt: skip


def missing_tools() -> str:
    """Why the part can't run here ("" when it can)."""
    for tool in ("valgrind", "callgrind_control", "redis-server"):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian: apt-get install valgrind redis-server)"
    return ""


async def instructions_part(report: Report, workdir: Path, calls: int) -> None:
    why = missing_tools()
    if why:
        raise BenchError(f"instructions: {why}")
    grind = Callgrind(workdir, shutil.which("redis-server") or "redis-server")
    redis = Redis(port=grind.port)
    try:
        await grind.ready(redis)
        plain = await _pool(grind, redis, calls, paced=False)
        paced = await _pool(grind, redis, calls, paced=True)
    finally:
        await redis.aclose()
        grind.stop()
    report.details["instructions"] = {
        "accounts": ACCOUNTS, "calls": calls, "in_flight": IN_FLIGHT,
        "reserve": round(plain.reserve), "settle": round(plain.settle),
        "paced_reserve": round(paced.reserve), "paced_settle": round(paced.settle),
    }  # fmt: skip
    for metric, value in (
        (f"instructions per reserve, {ACCOUNTS:,} accounts", plain.reserve),
        (f"instructions per settle, {ACCOUNTS:,} accounts", plain.settle),
        (f"instructions per paced reserve, {ACCOUNTS:,} accounts", paced.reserve),
        (f"instructions per paced settle, {ACCOUNTS:,} accounts", paced.settle),
    ):
        report.add(Row("instructions", metric, value / 1000, None, value / 1000, "k instr"))
    report.add(Row("instructions", "paced / unpaced reserve", paced.reserve / 1000,
                   plain.reserve / 1000, paced.reserve / plain.reserve, "x",
                   side_unit="k instr"))  # fmt: skip
