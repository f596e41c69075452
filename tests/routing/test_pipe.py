"""The pipelined connection (routing.pipe) against real Redis servers: order, error replies,
lost scripts, a server that hangs, one that goes away and comes back, credentials."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import hiredis
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from gateway.local.embedded import EmbeddedRedis
from routing.pipe import Address, Pipe

pytestmark = pytest.mark.topologies


def _private_server(*extra: str) -> EmbeddedRedis:
    return EmbeddedRedis(Path(tempfile.mkdtemp(prefix="mjp")), extra_args=extra)


async def test_replies_reach_their_callers_in_order(pipe: Pipe, prefix: str) -> None:
    key = f"{prefix}:n"
    replies = await asyncio.gather(*(pipe.send(b"INCR", key) for _ in range(500)))
    assert replies == list(range(1, 501))
    assert await pipe.call(b"GET", key) == b"500"


async def test_commands_sent_in_a_row_run_in_that_order(pipe: Pipe, prefix: str) -> None:
    key = f"{prefix}:list"
    first = pipe.send(b"RPUSH", key, "a")
    second = pipe.send(b"RPUSH", key, "b")
    third = pipe.send(b"LRANGE", key, 0, -1)
    assert await third == [b"a", b"b"]  # awaited out of order, run in order
    assert (await first, await second) == (1, 2)


async def test_an_error_reply_fails_only_its_command(pipe: Pipe, prefix: str) -> None:
    key = f"{prefix}:s"
    await pipe.call(b"SET", key, "text")
    good = pipe.send(b"GET", key)
    bad = pipe.send(b"INCR", key)
    after = pipe.send(b"STRLEN", key)
    with pytest.raises(ResponseError, match="not an integer"):
        await bad
    assert (await good, await after) == (b"text", 4)


async def _on_node_of(redis: Redis, key: str, *command: str | int) -> Any:
    """`command` on the server holding `key` (the one server, or that key's cluster node)."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        node = redis.get_node_from_key(key)
        return await redis.execute_command(*command, target_nodes=node)
    return await redis.execute_command(*command)


async def test_a_lost_script_is_sent_again_with_its_source(
    pipe: Pipe, redis: Redis, prefix: str
) -> None:
    source = "return 'pipe-test-' .. ARGV[1]"
    key = f"{prefix}:script"
    sha = await _on_node_of(redis, key, "SCRIPT", "LOAD", source)
    await _on_node_of(redis, key, "SCRIPT", "FLUSH")
    with pytest.raises(NoScriptError):
        await pipe.send(b"EVALSHA", sha, 1, key, "x")
    assert await pipe.evalsha(sha, source, (key,), ("x",)) == b"pipe-test-x"
    assert await _on_node_of(redis, key, "SCRIPT", "EXISTS", sha) == [1]  # EVAL cached it


async def test_a_cancelled_caller_does_not_shift_the_replies(pipe: Pipe, prefix: str) -> None:
    key = f"{prefix}:c"
    await pipe.call(b"SET", key, "v")
    slow = asyncio.ensure_future(pipe.call(b"BLPOP", f"{prefix}:empty", "0.05"))
    mine = pipe.send(b"GET", key)
    await asyncio.sleep(0.01)
    slow.cancel()
    assert await mine == b"v"
    assert await pipe.call(b"GET", key) == b"v"


async def test_a_hung_server_times_out_everything_in_flight() -> None:
    """A TCP server that accepts and never answers: every caller fails after the timeout,
    not before, and the connection is dropped (no late reply can reach a new caller)."""
    hung_up: list[bool] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # until the client hangs up
        hung_up.append(True)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pipe = Pipe(Address(port=port), timeout=0.2)
    try:
        started = time.monotonic()
        calls = [pipe.send(b"PING") for _ in range(10)]
        for call in calls:
            with pytest.raises(TimeoutError):
                await call
        assert 0.2 <= time.monotonic() - started < 0.6
        await asyncio.sleep(0.05)
        assert hung_up == [True]
    finally:
        await pipe.aclose()
        server.close()


async def test_a_server_that_goes_away_and_comes_back() -> None:
    server = _private_server()
    url = server.start()
    client = Redis.from_url(url)
    pipe = Pipe.of(client)
    try:
        assert await pipe.call(b"PING") == b"PONG"
        server.stop()
        with pytest.raises(ConnectionError):
            await pipe.call(b"PING")
        started = time.monotonic()
        with pytest.raises(ConnectionError):  # refused at once, no waiting for a timeout
            await pipe.call(b"PING")
        assert time.monotonic() - started < 0.2
        server.start()
        assert await pipe.call(b"PING") == b"PONG"
    finally:
        await pipe.aclose()
        await client.aclose()
        server.stop()


async def test_a_killed_connection_fails_its_commands_and_reconnects(
    pipe: Pipe, redis: Redis, prefix: str
) -> None:
    key = f"{prefix}:empty"
    client_id = await pipe.call(b"CLIENT", b"ID", route=key)
    blocked = pipe.send(b"BLPOP", key, "2")
    await asyncio.sleep(0.05)
    assert await _on_node_of(redis, key, "CLIENT", "KILL", "ID", client_id) == 1
    with pytest.raises(ConnectionError):
        await blocked
    assert await pipe.call(b"CLIENT", b"ID", route=key) != client_id  # a new connection


async def test_credentials_and_database_from_the_url() -> None:
    server = _private_server("--requirepass", "s3cret-pipe")
    url = server.start()
    try:
        good = Redis.from_url(f"unix://:s3cret-pipe@{url.removeprefix('unix://')}?db=3")
        pipe = Pipe.of(good)
        try:
            await pipe.call(b"SET", "where", "db3")
            assert await good.get("where") == b"db3"
            assert await good.execute_command("SELECT", 0) and await good.get("where") is None
        finally:
            await pipe.aclose()
            await good.aclose()
        bad = Redis.from_url(f"unix://:wrong@{url.removeprefix('unix://')}")
        pipe = Pipe.of(bad)
        try:
            with pytest.raises((ConnectionError, ResponseError)):
                await pipe.call(b"PING")
        finally:
            await pipe.aclose()
            await bad.aclose()
    finally:
        server.stop()


async def test_a_transaction_returns_exec_s_replies(pipe: Pipe, prefix: str) -> None:
    key = f"{prefix}:t"
    assert await pipe.transaction((b"INCR", key), (b"EXPIRE", key, 60), (b"GET", key)) == [
        1,
        1,
        b"1",
    ]
    with pytest.raises(ResponseError):  # a command refused while queueing aborts them all
        await pipe.transaction((b"INCR", key), (b"GET",))
    assert await pipe.call(b"GET", key) == b"1"


async def test_a_closed_pipe_refuses_commands_and_stays_closed(redis: Redis) -> None:
    pipe = Pipe.of(redis)
    assert await pipe.call(b"PING") == b"PONG"
    await pipe.aclose()
    with pytest.raises(ConnectionError, match="closed"):
        await pipe.call(b"PING")


class _Scripted:
    """A TCP server answering each command with the next of `replies` (the last repeats)."""

    def __init__(self, server: asyncio.Server, writers: list[asyncio.StreamWriter]) -> None:
        self.server, self.writers = server, writers

    async def close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _scripted_server(replies: list[bytes]) -> tuple[_Scripted, int, list[bytes]]:
    received: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        parser = hiredis.Reader()
        while data := await reader.read(4096):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                received.append(command[0])
                writer.write(replies[min(len(received) - 1, len(replies) - 1)])
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return _Scripted(server, writers), server.sockets[0].getsockname()[1], received


@pytest.mark.parametrize("kind", ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN"])
async def test_not_now_replies_are_retried_then_answered(kind: str) -> None:
    server, port, received = await _scripted_server(
        [f"-{kind} not now\r\n".encode(), f"-{kind} not now\r\n".encode(), b"+OK\r\n"]
    )
    pipe = Pipe(Address(port=port), timeout=1.0)
    try:
        assert await pipe.call(b"SET", "k", "v") == b"OK"
        assert received == [b"SET", b"SET", b"SET"]
    finally:
        await pipe.aclose()
        await server.close()


async def test_not_now_for_longer_than_the_timeout_is_the_command_s_error() -> None:
    server, port, received = await _scripted_server([b"-CLUSTERDOWN The cluster is down\r\n"])
    pipe = Pipe(Address(port=port), timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ResponseError, match="CLUSTERDOWN"):
            await pipe.call(b"SET", "k", "v")
        assert 0.1 <= time.monotonic() - started <= 0.5  # bounded backoff within the timeout
        assert 3 <= len(received) <= 10
    finally:
        await pipe.aclose()
        await server.close()


async def test_lost_scripts_sent_in_a_row_still_run_in_that_order(
    pipe: Pipe, redis: Redis, prefix: str
) -> None:
    """After a failover or a flush every EVALSHA gets NOSCRIPT: each is sent again as EVAL
    as its reply is read, not when its caller gets round to awaiting it."""
    key = f"{prefix}:ordered"
    source = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
    sha = await _on_node_of(redis, key, "SCRIPT", "LOAD", source)
    await _on_node_of(redis, key, "SCRIPT", "FLUSH")
    calls = [pipe.evalsha(sha, source, (key,), (str(n),)) for n in range(5)]
    assert [await call for call in reversed(calls)] == [5, 4, 3, 2, 1]
    assert await pipe.call(b"LRANGE", key, 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
