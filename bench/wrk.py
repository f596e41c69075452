"""wrk: found or installed (`apt-get install -y wrk` when running as root), driven by small Lua
scripts the bench writes, and its report parsed.

wrk is a closed-loop generator: `connections` requests in flight at all times, so its
requests/s is the server's throughput at that concurrency.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    non_2xx: int
    socket_errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def error_ratio(self) -> float:
        return (self.non_2xx + self.socket_errors) / max(1, self.requests)


def ensure_wrk() -> str:
    """wrk's path, installing the Debian package when missing and running as root."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed: run `sudo apt-get install -y wrk`, then again")
    print("bench: wrk is missing: apt-get install -y wrk", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"apt-get install wrk failed:\n{done.stderr[-2000:]}")
    path = shutil.which("wrk")
    if not path:
        raise BenchError("apt-get installed wrk but it is not on PATH")
    return path


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def _headers(headers: Mapping[str, str]) -> str:
    return "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
    )


def post_script(path: Path, body: bytes, headers: Mapping[str, str]) -> Path:
    """A script POSTing `body` to the URL's path on every request."""
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {_lua_string(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"{_headers(headers)}\n"
    )
    return path


def get_script(path: Path, paths: Sequence[str], headers: Mapping[str, str]) -> Path:
    """A script GETting each of `paths` in turn (each wrk thread starts at its own offset)."""
    items = ",\n".join(f"  {_lua_string(p)}" for p in paths)
    path.write_text(
        f"{_headers(headers)}\n"
        f"local paths = {{\n{items}\n}}\n"
        "local i = 0\n"
        "setup = function(thread) thread:set('offset', math.random(#paths)) end\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  return wrk.format('GET', paths[((i + (offset or 0)) % #paths) + 1])\n"
        "end\n"
    )
    return path


def _seconds(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse(output: str) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not total or not rate:
        raise BenchError(f"could not read wrk's report:\n{output[-2000:]}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = {
        m.group(1): _seconds(m.group(2), m.group(3)) * 1000
        for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    }
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_seconds(total.group(2), total.group(3)),
        requests_per_second=float(rate.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=latency.get("50"),
        p99_ms=latency.get("99"),
    )


def run(
    wrk: str, url: str, script: Path, *, connections: int, threads: int, seconds: float
) -> WrkResult:
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse(done.stdout)
