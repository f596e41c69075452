"""Wire: one pipelined socket to one Redis server (its `Address`: `routing.address`).

A `Connection` is an asyncio protocol: `send()` queues an already packed command (hiredis)
and returns a future; every command written in one event-loop turn goes out in one write, and
replies, which Redis sends in order, resolve the futures in order. `routing.pipe.Pipe` owns
the connections and decides where each command goes; the failure rules are in its docstring.

An error reply that asks for the command to be sent elsewhere, later or otherwise
(`routing.redirects`) is handed to the connection's `redirect` callback with the command,
instead of failing its future: the Pipe sends it again, at once, while the replies after it
are still being read (so commands sent again keep their order). Every such reply means the
command did not run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from routing.address import Address, Arg
from routing.redirects import error, redirection

# hiredis' stub declares a 1-tuple; it packs a command of any length
pack = cast(Callable[[tuple[Arg, ...]], bytes], hiredis.pack_command)


class Pending(NamedTuple):
    """A command in flight: its caller's future, when it was written, and enough to send it
    again (`slot` it was routed by, when it was first sent, how many times it was)."""

    future: asyncio.Future[Any]
    sent_at: float
    packed: bytes
    slot: int
    started: float
    attempt: int  # -1: inside MULTI, never sent again alone


Redirect = Callable[["Connection", Pending, ResponseError, bytes], None]
_WAIT_ENTRY = -2  # the `attempt` that marks a WAIT the connection added itself
_ROLE_ENTRY = -3  # ... and a ROLE it sends to count the primary's replicas
ROLE_REFRESH_SECONDS = 1.0  # how often a connection that waits for replicas counts them


@dataclass(frozen=True)
class Wait:
    """Hold every reply until the writes are on every replica the primary has (WAIT,
    `timeout_ms` at most), and on `replicas` at least: fewer is an error for every command of
    that write. (Waiting for all, not for the first `replicas`, is what makes any replica a
    failover promotes hold every acknowledged write: a failover picks among them by data it
    may know only from a second ago.)"""

    replicas: int
    timeout_ms: int

    def packed(self, known: int) -> bytes:
        return pack((b"WAIT", max(self.replicas, known), self.timeout_ms))


def replicas_of(role: Any) -> int | None:
    """How many replicas a ROLE reply says the server streams to (None: not a primary)."""
    if isinstance(role, list) and role and role[0] == b"master" and len(role) > 2:
        return len(role[2])
    return None


class Connection(asyncio.Protocol):
    """One socket: writes batched per loop turn, replies matched to futures in order."""

    def __init__(
        self,
        address: Address,
        timeout: float | None,
        redirect: Redirect | None = None,
        wait: Wait | None = None,
    ) -> None:
        self.address = address
        self._wait_after_handshake = wait
        self._wait: Wait | None = None  # not during the handshake: see open_connection
        self._replicas = 0  # the primary's replicas, last counted (ROLE)
        self._wait_packed = wait.packed(0) if wait is not None else b""
        self._counted_at = -ROLE_REFRESH_SECONDS
        self._held: list[tuple[asyncio.Future[Any], Any]] = []
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._redirect = redirect
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[tuple[asyncio.Future[Any], float, bytes, int, float, int]] = deque()
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
            entry = waiting.popleft()  # a plain tuple: Pending's fields, cheaper to make
            future = entry[0]
            if entry[5] < 0 and self._wait is not None:
                if entry[5] == _WAIT_ENTRY:
                    self._release(reply)
                    continue
                if entry[5] == _ROLE_ENTRY:
                    self.count_replicas(reply)
                    continue
            if future.done():  # its caller stopped waiting
                continue
            if isinstance(reply, ResponseError):
                kind = redirection(reply) if self._redirect is not None else None
                if kind is not None and self._redirect is not None:
                    self._redirect(self, Pending(*entry), reply, kind)
                else:
                    future.set_exception(error(reply))
            elif self._wait is not None:
                self._held.append((future, reply))
            else:
                future.set_result(reply)

    def count_replicas(self, role: Any) -> None:
        """A ROLE reply: from now on, writes wait for that many replicas (or the minimum)."""
        known = replicas_of(role)
        if known is not None:
            self._counted_at = self._loop.time()
            self._wait_for(known)

    def _wait_for(self, replicas: int) -> None:
        if self._wait_after_handshake is not None:
            self._replicas = replicas
            self._wait_packed = self._wait_after_handshake.packed(replicas)

    def _release(self, acknowledged: Any) -> None:
        """WAIT answered: the held replies, or an error for each if too few replicas."""
        held, self._held = self._held, []
        wait = self._wait
        assert wait is not None
        if isinstance(acknowledged, int) and acknowledged >= wait.replicas:
            if acknowledged < self._replicas:  # one fell behind or left: stop waiting for it
                self._wait_for(acknowledged)
            for future, reply in held:
                if not future.done():
                    future.set_result(reply)
            return
        failure = ResponseError(
            f"NOREPLICAS the write reached {acknowledged} of "
            f"{max(wait.replicas, self._replicas)} replicas "
            f"within {wait.timeout_ms} ms (it may have been applied on the primary)"
        )
        for future, _ in held:
            if not future.done():
                future.set_exception(failure)
                future.exception()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    # -- commands --------------------------------------------------------------------------
    def handshake_done(self) -> None:
        """From now on, writes end with WAIT (if configured)."""
        self._wait = self._wait_after_handshake

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self.closed.done()

    def send(
        self,
        packed: bytes,
        future: asyncio.Future[Any] | None = None,
        slot: int = 0,
        started: float = 0.0,
        attempt: int = 0,
    ) -> asyncio.Future[Any]:
        """Queue `packed`; its reply resolves `future` (a new one if None), returned."""
        if future is None:
            future = self._loop.create_future()
        if self.closed.done():
            future.set_exception(RedisConnectionError("connection to Redis closed"))
            return future
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(packed)
        now = self._loop.time()
        self._waiting.append((future, now, packed, slot, started or now, attempt))
        if self._watchdog is None and self._timeout is not None:
            self._watchdog = self._loop.call_later(self._timeout, self._check)
        return future

    def _flush(self) -> None:
        if self._wait is not None and self._out:
            self._out.append(self._wait_packed)
            now = self._loop.time()
            done: asyncio.Future[Any] = self._loop.create_future()
            self._waiting.append((done, now, self._wait_packed, 0, now, _WAIT_ENTRY))
            if now - self._counted_at >= ROLE_REFRESH_SECONDS:  # a replica may have joined
                self._counted_at = now
                role = pack((b"ROLE",))
                self._out.append(role)
                counted: asyncio.Future[Any] = self._loop.create_future()
                self._waiting.append((counted, now, role, 0, now, _ROLE_ENTRY))
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
            self.fail(RedisTimeoutError(f"no answer from Redis within {self._timeout} s"))
            return
        self._watchdog = self._loop.call_later(overdue, self._check)

    def fail(self, error: Exception) -> None:
        """Close for good: every command in flight gets `error`."""
        if not self.closed.done():
            self.closed.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting, self._out = self._waiting, deque(), []
        held, self._held = self._held, []
        for future, _ in held:
            if not future.done():
                future.set_exception(error)
                future.exception()
        for entry in waiting:
            future = entry[0]
            if not future.done():
                future.set_exception(error)
                future.exception()  # a caller that gave up on it need not hear of it again
        if self._transport is not None:
            self._transport.abort()


async def open_connection(
    address: Address,
    timeout: float | None,
    redirect: Redirect | None = None,
    *,
    role: bool = False,
    wait: Wait | None = None,
) -> Connection:
    """Connect and run the handshake (AUTH, SELECT); with `role`, also check that the server
    is a primary (ROLE), which a Sentinel-announced address may have stopped being."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        if address.path:
            _, connection = await loop.create_unix_connection(
                lambda: Connection(address, timeout, redirect, wait), address.path
            )
        else:
            _, connection = await loop.create_connection(
                lambda: Connection(address, timeout, redirect, wait),
                address.host,
                address.port,
                ssl=address.ssl,
            )
        try:
            for command in address.handshake():
                await connection.send(pack(command))
            if role or wait is not None:
                reply = await connection.send(pack((b"ROLE",)))
                if role and reply[0] != b"master":
                    raise RedisConnectionError(f"{address} is a {reply[0].decode()}, not a primary")
                connection.count_replicas(reply)
        except BaseException as exc:
            connection.fail(RedisConnectionError(f"Redis refused the handshake: {exc}"))
            raise
    connection.handshake_done()
    return connection
