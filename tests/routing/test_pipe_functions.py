"""The pipelined connection (routing.pipe) calling Redis Functions (routing.scriptcalls)
against real servers: a server that lost the library, one without Functions (Redis 6.2, the
embedded server), a user not allowed to load them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.local.embedded import EmbeddedRedis
from gateway.local.topologies import Servers, free_port
from routing.functions import Library
from routing.pipe import Pipe
from routing.scripts import load_library
from tests.routing.helpers import needs_functions
from tests.routing.test_pipe import _on_node_of

pytestmark = pytest.mark.topologies


def _library(prefix: str) -> tuple[Library, str]:
    """A one-function library named after the test (so deleting it touches nothing else),
    and the same script as EVAL source."""
    name = "pt_" + prefix.replace(":", "_").replace("-", "_")
    function = f"{name}__push"
    script = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
    register = f"redis.register_function('{function}', function(KEYS, ARGV)\n{script}\nend)"
    code = f"#!lua name={name}\n{register}"
    return Library(name, code, {"push": function}), script


@contextlib.asynccontextmanager
async def _old_server() -> AsyncIterator[Pipe]:
    """A pipe to a private Redis 6.2 (the embedded server: no Functions)."""
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjp")))
    client = Redis.from_url(server.start())
    pipe = Pipe.of(client)
    try:
        yield pipe
    finally:
        await pipe.aclose()
        await client.aclose()
        server.stop()


def _push(pipe: Pipe, library: Library, script: str, key: str, value: str) -> Any:
    sha = hashlib.sha1(script.encode()).hexdigest()
    return pipe.send(*pipe.scripts.fcall(library, "push", sha, script, (key,), (value,)))


async def test_a_missing_function_runs_as_eval_in_order_and_its_library_is_loaded_again(
    pipe: Pipe, redis: Redis, prefix: str
) -> None:
    """A server that lacks the library (restarted empty, FUNCTION FLUSH) runs every FCALL
    sent meanwhile as EVAL, in the order sent, and gets the library back."""
    await needs_functions(redis)
    key = f"{prefix}:fn"
    library, script = _library(prefix)
    try:
        calls = [_push(pipe, library, script, key, str(n)) for n in range(5)]
        assert [await call for call in reversed(calls)] == [5, 4, 3, 2, 1]
        assert await pipe.call(b"LRANGE", key, 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
        for _ in range(50):
            if await _on_node_of(redis, key, "FUNCTION", "LIST", "LIBRARYNAME", library.name):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the library was not loaded again")
        assert pipe.scripts.functions
        assert await _push(pipe, library, script, key, "5") == 6
    finally:
        with contextlib.suppress(ResponseError):
            await _on_node_of(redis, key, "FUNCTION", "DELETE", library.name)


async def test_loading_the_library_on_a_server_without_functions_says_it_cannot() -> None:
    """What a start on the embedded server (Redis 6.2) does first: FUNCTION LOAD is an
    unknown command there; the pipe uses EVALSHA from then on."""
    library, script = _library("old-load")
    async with _old_server() as pipe:
        assert await load_library(pipe, library, "k") is False
        assert not pipe.scripts.functions
        assert await _push(pipe, library, script, "k", "a") == 1


async def test_a_server_without_functions_gets_evalsha() -> None:
    """Redis 6.2 (the embedded server) has no FCALL: the call runs as EVAL, and from then on
    the pipe sends EVALSHA; loading the library says it can't."""
    library, script = _library("old")
    sha = hashlib.sha1(script.encode()).hexdigest()
    async with _old_server() as pipe:
        assert await _push(pipe, library, script, "k", "a") == 1
        assert not pipe.scripts.functions
        assert await _push(pipe, library, script, "k", "b") == 2
        assert await pipe.call(b"SCRIPT", b"EXISTS", sha) == [1]
        assert await load_library(pipe, library, "k") is False


async def test_a_user_not_allowed_to_load_functions_gets_evalsha(tmp_path: Path) -> None:
    servers = Servers(tmp_path)
    port = free_port()
    servers.start(port, ["--port", str(port), "--save", "", "--appendonly", "no"])
    admin = Redis(port=port)
    await admin.execute_command(
        "ACL", "SETUSER", "app", "on", ">app-password", "~*", "+@all", "-function"
    )
    client = Redis.from_url(f"redis://app:app-password@127.0.0.1:{port}")
    pipe = Pipe.of(client)
    library, script = _library("acl")
    try:
        assert await load_library(pipe, library, "k") is False
        assert not pipe.scripts.functions
        assert await _push(pipe, library, script, "k", "a") == 1
        assert await admin.function_list() == []
    finally:
        await pipe.aclose()
        await client.aclose()
        await admin.aclose()
        servers.kill(port)
