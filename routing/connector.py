"""Connector: the Pipe's connections, one per Redis server, and how they are (re)made.

A command that finds no usable connection for its server is parked (`Parked`) while the
connector learns where parked commands go (the resolver's `refresh`: sentinels, slot map) and
connects there (`repair`). A connection to a server found demoted (`READONLY`) is retired:
no command is sent on it any more, and it is closed once the replies in flight had time to
come back. Every connection ever opened is closed with the pipe (`close`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from routing.address import Address
from routing.redirects import DEFAULT_DEADLINE
from routing.resolvers import Resolver
from routing.wire import Connection, Redirect, Wait, open_connection


class Parked(NamedTuple):
    """A command sent while its server had no usable connection."""

    packed: bytes
    future: asyncio.Future[Any]
    slot: int
    started: float
    attempt: int
    target: Address | None  # MOVED, ASK: this node, whatever the slot map says
    asking: bool  # ASK: send ASKING first


class Repair(NamedTuple):
    """What a repair did: how many parked commands it looked at, the errors it met by address
    (None: the resolver's own), whether it opened a connection."""

    looked_at: int
    errors: dict[Address | None, BaseException]
    opened: bool = False


class Connector:
    """The connections by server address; see the module's docstring."""

    def __init__(
        self, resolver: Resolver, timeout: float | None, redirect: Redirect, wait: Wait | None
    ) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.redirect = redirect
        self.wait = wait
        self.connections: dict[Address, Connection] = {}
        self._retired: set[Connection] = set()  # to a demoted primary, closing soon
        self._open_ones: set[Connection] = set()  # every connection not closed yet

    def usable(self, address: Address) -> bool:
        connection = self.connections.get(address)
        return connection is not None and connection.usable

    async def repair(self, batch: Sequence[Parked]) -> Repair:
        """Learn where the parked commands go (if the resolver doesn't know) and connect
        there."""
        resolver = self.resolver
        errors: dict[Address | None, BaseException] = {}
        try:
            async with asyncio.timeout(self.timeout):
                if any(p.target is None and resolver.address(p.slot) is None for p in batch):
                    await resolver.refresh()
                wanted = {p.target or resolver.address(p.slot) for p in batch} - {None}
                missing = [a for a in wanted if a is not None and not self.usable(a)]
                opened = await asyncio.gather(
                    *(self._open(address) for address in missing), return_exceptions=True
                )
        except (RedisError, OSError, TimeoutError) as exc:
            return Repair(len(batch), {None: exc})
        any_opened = False
        for address, result in zip(missing, opened, strict=True):
            if isinstance(result, Connection):
                self.connections[address] = result
                any_opened = True
            else:
                resolver.invalidate(address)
                errors[address] = result
        return Repair(len(batch), errors, any_opened)

    async def _open(self, address: Address) -> Connection:
        connection = await open_connection(
            address, self.timeout, self.redirect, role=self.resolver.check_role, wait=self.wait
        )
        self._open_ones.add(connection)

        def closed(_: object) -> None:
            self._open_ones.discard(connection)
            self.resolver.invalidate(address)

        connection.closed.add_done_callback(closed)
        return connection

    def retire(self, connection: Connection) -> bool:
        """Stop sending on `connection` (a replica now); close it once in-flight replies had
        time to come back. True if it was the one in use for its address."""
        current = self.connections.get(connection.address) is connection
        if current:
            del self.connections[connection.address]
        self._retired.add(connection)
        asyncio.get_running_loop().call_later(
            self.timeout or DEFAULT_DEADLINE, self._close_retired, connection
        )
        return current

    def _close_retired(self, connection: Connection) -> None:
        self._retired.discard(connection)
        connection.fail(RedisConnectionError("connection to a replica retired"))

    def close(self) -> None:
        """Close every connection, with any a repair opened as it was cancelled."""
        connections, self.connections = self.connections, {}
        retired, self._retired = self._retired, set()
        for connection in {*connections.values(), *retired, *self._open_ones}:
            connection.fail(RedisConnectionError("pipe closed"))

    def mapped(self, error: BaseException) -> BaseException:
        """A repair's error as redis-py's exception, which the Pipe's callers handle."""
        if isinstance(error, RedisError):
            return error
        if isinstance(error, TimeoutError):  # asyncio.timeout's, the builtin
            return RedisTimeoutError(f"no connection to Redis within {self.timeout} s")
        if isinstance(error, OSError):
            return RedisConnectionError(f"cannot connect to Redis: {error}")
        return RedisConnectionError(str(error))
