"""Pipe: one pipelined Redis connection for the hot path (reserve, settle, task records).

redis-py's asyncio client costs 50 to 130 µs of CPU per call (a pooled connection checked
out and back, asyncio streams, `wait_for` tasks, observability hooks); a create makes three
calls, so that was a third of mjgate's own CPU per request. A Pipe is a protocol on one socket:
`send()` packs the command (hiredis), queues it and returns a future; every command written in
one event-loop turn goes out in one write, and replies, which Redis sends in order, resolve
the futures in order (hiredis parses them). About 9 µs per call at 32 in flight, measured in
docs/benchmarks.md. Redis runs commands one at a time anyway, so one connection does not
serialise anything that was parallel.

Failures are redis-py's exception types, so callers handle one family:
- `ResponseError` (and `NoScriptError`) for an error reply, that command only;
- `ConnectionError` when the connection can't be made or drops: every command in flight fails
  (whether Redis ran it is unknown, as with any client) and the next `send` reconnects;
- `TimeoutError` when the oldest command in flight has no reply after `timeout` seconds: the
  connection is deemed dead, closed, and everything in flight fails. No reply can then reach
  the wrong caller, since a reconnect starts a fresh reply stream.

A caller that stops waiting (cancelled) leaves its slot in the queue; its reply is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float
# hiredis' stub declares a 1-tuple; it packs a command of any length
_pack = cast(Callable[[tuple[Arg, ...]], bytes], hiredis.pack_command)


@dataclass(frozen=True)
class Address:
    """Where and how to connect: TCP (`host`, `port`) or a unix socket (`path`)."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: ssl.SSLContext | None = None

    @classmethod
    def of(cls, redis: Redis) -> Address:
        """The address a redis-py client connects to (same URL, credentials, database)."""
        pool = redis.connection_pool
        kw = pool.connection_kwargs
        context: ssl.SSLContext | None = None
        if issubclass(pool.connection_class, SSLConnection):
            context = ssl.create_default_context(cafile=kw.get("ssl_ca_certs"))
            if kw.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return cls(
            host=kw.get("host") or "127.0.0.1",
            port=int(kw.get("port") or 6379),
            path=kw.get("path"),
            db=int(kw.get("db") or 0),
            username=kw.get("username"),
            password=kw.get("password"),
            ssl=context,
        )

    def handshake(self) -> list[tuple[Arg, ...]]:
        commands: list[tuple[Arg, ...]] = []
        if self.password is not None:
            auth: tuple[Arg, ...] = (
                (self.username, self.password) if self.username else (self.password,)
            )
            commands.append((b"AUTH", *auth))
        if self.db:
            commands.append((b"SELECT", self.db))
        return commands


def _error(reply: ResponseError) -> ResponseError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return reply


class _Connection(asyncio.Protocol):
    """One socket: writes batched per loop turn, replies matched to futures in order."""

    def __init__(self, timeout: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = self._loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's aren't subclasses

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while waiting:
            reply = self._reader.gets()
            if reply is False:
                break
            future, _ = waiting.popleft()
            if future.done():  # its caller stopped waiting
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    # -- commands --------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self._transport is not None and not self.closed.done()

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        if self.closed.done():
            future.set_exception(RedisConnectionError("connection to Redis closed"))
            return future
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(packed)
        self._waiting.append((future, self._loop.time()))
        if self._watchdog is None and self._timeout is not None:
            self._watchdog = self._loop.call_later(self._timeout, self._check)
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _check(self) -> None:
        """The watchdog: the oldest command's reply is overdue, or re-arm for when it is."""
        self._watchdog = None
        if not self._waiting or self._timeout is None:
            return
        overdue = self._waiting[0][1] + self._timeout - self._loop.time()
        if overdue <= 0:
            self._fail(RedisTimeoutError(f"no answer from Redis within {self._timeout} s"))
            return
        self._watchdog = self._loop.call_later(overdue, self._check)

    def _fail(self, error: Exception) -> None:
        """Close for good: every command in flight gets `error`."""
        if not self.closed.done():
            self.closed.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting, self._out = self._waiting, deque(), []
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)
                future.exception()  # a caller that gave up on it need not hear of it again
        if self._transport is not None:
            self._transport.abort()


class Pipe:
    """A lazily (re)connected pipelined connection; see the module's docstring."""

    def __init__(self, address: Address, *, timeout: float | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._parked: list[tuple[bytes, asyncio.Future[Any]]] = []  # sent while connecting
        self._closed = False

    @classmethod
    def of(cls, redis: Redis) -> Pipe:
        """A pipe to the server `redis` talks to, with its socket timeout (if any)."""
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        return cls(Address.of(redis), timeout=float(timeout) if timeout else None)

    def send(self, *args: Arg) -> asyncio.Future[Any]:
        """Queue one command now (so commands sent in a row run in that order); its reply is
        the future's result."""
        packed = _pack(args)
        connection = self._connection
        if connection is not None and connection.usable:
            return connection.send(packed)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._closed:  # never reconnect after aclose: nobody would close it again
            future.set_exception(RedisConnectionError("pipe closed"))
            return future
        self._parked.append((packed, future))
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect())
            self._connecting.add_done_callback(self._connected)
        return future

    async def call(self, *args: Arg) -> Any:
        return await self.send(*args)

    async def transaction(self, *commands: tuple[Arg, ...]) -> list[Any]:
        """MULTI, `commands`, EXEC, sent together: their replies, applied atomically."""
        queued = [self.send(b"MULTI"), *(self.send(*command) for command in commands)]
        done = self.send(b"EXEC")
        try:
            for reply in queued:
                await reply  # +OK / +QUEUED, or the error that makes EXEC abort
        finally:
            result = await done
        return list(result)

    def evalsha(
        self, sha: str, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> Awaitable[Any]:
        """EVALSHA, sent now; should Redis have lost the script (restart, SCRIPT FLUSH,
        failover), EVAL with its source, which caches it again."""
        head = (len(keys), *keys, *args)
        first = self.send(b"EVALSHA", sha, *head)
        return self._script_reply(first, source, head)

    async def _script_reply(
        self, first: asyncio.Future[Any], source: str, head: tuple[Arg, ...]
    ) -> Any:
        try:
            return await first
        except NoScriptError:
            return await self.send(b"EVAL", source, *head)

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._connection is not None:
            self._connection._fail(RedisConnectionError("pipe closed"))
            self._connection = None

    # -- connecting ------------------------------------------------------------------------
    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        async with asyncio.timeout(self.timeout):
            if address.path:
                _, connection = await loop.create_unix_connection(
                    lambda: _Connection(self.timeout), address.path
                )
            else:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self.timeout), address.host, address.port, ssl=address.ssl
                )
            try:
                for command in address.handshake():
                    await connection.send(_pack(command))
            except BaseException as exc:
                connection._fail(RedisConnectionError(f"Redis refused the handshake: {exc}"))
                raise
        return connection

    def _connected(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        parked, self._parked = self._parked, []
        error: BaseException | None
        if task.cancelled():
            error = RedisConnectionError("pipe closed while connecting")
        else:
            error = task.exception()
            if isinstance(error, TimeoutError):  # asyncio.timeout's, the builtin
                error = RedisTimeoutError(f"no connection to Redis within {self.timeout} s")
            elif isinstance(error, OSError):
                error = RedisConnectionError(f"cannot connect to Redis: {error}")
        if error is None:
            connection = task.result()
            self._connection = connection
            for packed, future in parked:
                reply = connection.send(packed)
                _chain(reply, future)
            return
        for _, future in parked:
            if not future.done():
                future.set_exception(error)


def _chain(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    def copy(done: asyncio.Future[Any]) -> None:
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif (error := done.exception()) is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
