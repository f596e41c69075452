"""The embedded Redis's data folder: a server left running by an older start (no pid file) is
shut down, saving, before a new one starts; a folder with only a snapshot keeps its data and
gains the append-only file."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import redis

from gateway.local.embedded import AOF_FILE, EmbeddedRedis


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="mje"))  # short: unix socket paths are limited


def _client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket))


def _answering(server: EmbeddedRedis) -> redis.Redis:
    client = _client(server)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return client
        except (redis.ConnectionError, FileNotFoundError):
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.05)


def test_a_server_without_pid_file_is_shut_down_and_its_data_kept() -> None:
    server = EmbeddedRedis(_folder())
    server.data_dir.mkdir(parents=True, exist_ok=True)
    orphan = subprocess.Popen(server.command(), stdout=subprocess.DEVNULL)  # an older start's
    try:
        with _answering(server) as client:
            client.set("kept", "yes")
        assert not server.pid_file.exists()
        server.start()
        assert orphan.wait(10) == 0  # shut down cleanly, not killed
        with _client(server) as client:
            assert client.get("kept") == b"yes"
    finally:
        server.stop()
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_a_snapshot_only_folder_keeps_its_data_and_gains_the_append_only_file() -> None:
    folder = _folder()
    old = EmbeddedRedis(folder, extra_args=("--appendonly", "no"))
    old.start()
    with _client(old) as client:
        client.set("from-before", "1")
        client.save()
    old.stop()
    assert not (folder / AOF_FILE).exists()
    server = EmbeddedRedis(folder)
    try:
        server.start()
        with _client(server) as client:
            assert client.get("from-before") == b"1"
            assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        server.stop()
    assert (folder / AOF_FILE).stat().st_size > 0
