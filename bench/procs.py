"""Processes the bench starts: each on a free 127.0.0.1 port, logged to a file, and stopped
whatever happens (normal end, an error, Ctrl-C, SIGTERM).

`Services` is a context manager owning every process it started; leaving it stops them all
(SIGTERM, then SIGKILL after a grace period), each by its own pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

GRACE_SECONDS = 10.0


class BenchError(RuntimeError):
    """The bench cannot go on; the message says why and what to do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    name: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the process has used so far; None off Linux."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Services:
    def __init__(self, workdir: Path) -> None:
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._running: list[Service] = []
        self._on_exit: list[Callable[[], None]] = []

    def start(
        self,
        name: str,
        args: Sequence[str],
        *,
        port: int,
        ready_path: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Service:
        """Start `args` (which must listen on `port`) and wait until `ready_path` answers 200."""
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops it in order
            )
        service = Service(name, f"http://127.0.0.1:{port}", port, process, log)
        self._running.append(service)
        self._wait_ready(service, ready_path, timeout)
        return service

    def _wait_ready(self, service: Service, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise BenchError(
                    f"{service.name} exited with {service.process.returncode} while starting; "
                    f"its log ({service.log}) ends with:\n{service.tail()}"
                )
            try:
                if httpx.get(service.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise BenchError(
            f"{service.name} did not answer {path} within {timeout:g} s; "
            f"its log ({service.log}) ends with:\n{service.tail()}"
        )

    def stop(self, service: Service) -> None:
        _terminate(service.process)
        if service in self._running:
            self._running.remove(service)

    def stop_all(self) -> None:
        while self._running:
            self.stop(self._running[-1])

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the context ends, after every process is stopped."""
        self._on_exit.append(callback)

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop_all()
        finally:
            while self._on_exit:
                self._on_exit.pop()()


def raise_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so every `finally` (process stops, key cleanup) runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The bench's environment without any mjgate/GoAPI setting, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MJGATE_", "GOAPI_"))}
    base.pop("REDIS_URL", None)
    return {**base, **extra}
