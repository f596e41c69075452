"""Child processes of `mjgate serve` (the embedded Redis, the sandbox emulator): they die with
their parent, and a start that finds one left over by a crashed run stops it.

Dying with the parent uses Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`, set in the
child between fork and exec): when `mjgate serve` dies, even by SIGKILL, the kernel sends the
child SIGTERM, and the Redis server saves and exits. (The signal follows the thread that
started the child: `mjgate serve` starts both from its main thread, before any other.)
A child's pid is kept in a pid file in the data folder; a later start reads it and, if that
process still runs the same command (checked in /proc, so a recycled pid is never touched),
stops it and says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive `sig` when this process dies (Linux only;
    elsewhere None, and a crash may leave the child running: the pid file then stops it)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), sig)

    return preexec


def command_line(pid: int) -> list[str] | None:
    """The process's arguments, or None if it is gone (or /proc is not there)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie: exited, not yet reaped
        return None
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def alive(pid: int) -> bool:
    return command_line(pid) is not None


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.write_text(f"{pid}\n")


def clear_pid(pid_file: Path, pid: int) -> None:
    """Remove the pid file if it still names `pid`."""
    with contextlib.suppress(OSError, ValueError):
        if int(pid_file.read_text().strip()) == pid:
            pid_file.unlink()


def stop_stale(pid_file: Path, marker: str, timeout: float = 10.0) -> int | None:
    """Stop the process `pid_file` names if its command line contains `marker` (a leftover of
    a crashed run); returns its pid, or None if there was none. SIGTERM first (Redis saves),
    SIGKILL after `timeout` seconds."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    args = command_line(pid)
    if args is None or not any(marker in arg for arg in args):
        with contextlib.suppress(OSError):
            pid_file.unlink()
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    with contextlib.suppress(OSError):
        pid_file.unlink()
    return pid
