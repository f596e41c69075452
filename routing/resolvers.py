"""Resolvers: where the hot-path Pipe sends a command, for each Redis topology.

A resolver answers `address(slot)` from what it last learnt, without I/O (the Pipe asks on
every command), and `refresh()` learns again. The Pipe calls `invalidate()` when a connection
to `address` is lost, times out or meets a replica (`READONLY`), so the next command makes it
refresh first; `moved(slot, address)` when a cluster node says a slot moved.

- `Fixed`: one server (standalone, or the embedded one).
- `SentinelPrimary`: the primary the sentinels name; the Pipe checks `ROLE` on connect, since
  sentinels may still name a demoted primary for a moment after a failover.
- `ClusterSlots`: the primary of each of the 16,384 slots, from `CLUSTER SLOTS` asked of any
  node that answers (the known nodes first, then the configured seeds).

`resolver_for(client)` picks the one a redis-py client's configuration calls for.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from routing.address import Address
from routing.wire import open_connection, pack

SLOTS = 16384


def key_slot(key: bytes) -> int:
    """Redis Cluster's slot of `key`: CRC16 (XMODEM) of its hash tag, or of all of it."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key, 0) % SLOTS


class Resolver(Protocol):
    per_slot: bool  # True: commands are routed by their key's slot
    check_role: bool  # True: a connection must find a primary (ROLE) before use

    def address(self, slot: int) -> Address | None: ...

    def invalidate(self, address: Address) -> None: ...

    def moved(self, slot: int, address: Address) -> None: ...

    def node(self, host: str, port: int) -> Address: ...

    async def refresh(self) -> None: ...


class Fixed:
    per_slot = False
    check_role = False

    def __init__(self, address: Address) -> None:
        self._address = address

    def address(self, slot: int) -> Address | None:
        return self._address

    def invalidate(self, address: Address) -> None:
        pass

    def moved(self, slot: int, address: Address) -> None:
        pass

    def node(self, host: str, port: int) -> Address:
        return dataclasses.replace(self._address, host=host, port=port)

    async def refresh(self) -> None:
        pass


class SentinelPrimary:
    """`ask()` returns the primary's (host, port) as the sentinels see it (redis-py's
    `Sentinel.discover_master`, which skips sentinels that consider it down); `template`
    carries the credentials, database and TLS of the data nodes."""

    per_slot = False
    check_role = True

    def __init__(self, ask: Callable[[], Awaitable[tuple[str, int]]], template: Address) -> None:
        self._ask = ask
        self._template = template
        self._primary: Address | None = None

    def address(self, slot: int) -> Address | None:
        return self._primary

    def invalidate(self, address: Address) -> None:
        if address == self._primary:
            self._primary = None

    def moved(self, slot: int, address: Address) -> None:
        pass

    def node(self, host: str, port: int) -> Address:
        return dataclasses.replace(self._template, host=host, port=port)

    async def refresh(self) -> None:
        host, port = await self._ask()
        self._primary = dataclasses.replace(self._template, host=str(host), port=int(port))


class ClusterSlots:
    """The slot map of a Redis Cluster; `seeds` are the configured nodes (with credentials
    and TLS), `timeout` bounds each node's answer."""

    per_slot = True
    check_role = False

    def __init__(self, seeds: Sequence[Address], *, timeout: float | None) -> None:
        if not seeds:
            raise ValueError("a cluster needs at least one seed node")
        self._seeds = tuple(seeds)
        self._timeout = timeout
        self._slots: list[Address | None] = [None] * SLOTS
        self._known: tuple[Address, ...] = ()
        self._stale = True

    def address(self, slot: int) -> Address | None:
        return None if self._stale else self._slots[slot]

    def invalidate(self, address: Address) -> None:
        self._stale = True

    def moved(self, slot: int, address: Address) -> None:
        self._slots[slot] = address
        self._stale = True  # one slot moved: others may have too; the next send refreshes

    def node(self, host: str, port: int) -> Address:
        return dataclasses.replace(self._seeds[0], host=host, port=port)

    async def refresh(self) -> None:
        errors: list[str] = []
        for node in dict.fromkeys((*self._known, *self._seeds)):
            try:
                reply = await self._cluster_slots(node)
            except (RedisError, OSError, TimeoutError) as exc:
                errors.append(f"{node}: {exc or type(exc).__name__}")
                continue
            self._install(node, reply)
            return
        raise RedisConnectionError(f"no cluster node answered CLUSTER SLOTS ({'; '.join(errors)})")

    async def _cluster_slots(self, node: Address) -> list[Any]:
        connection = await open_connection(node, self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                return list(await connection.send(pack((b"CLUSTER", b"SLOTS"))))
        finally:
            with contextlib.suppress(Exception):
                connection.fail(RedisConnectionError("done"))

    def _install(self, asked: Address, reply: list[Any]) -> None:
        slots: list[Address | None] = [None] * SLOTS
        primaries: dict[tuple[str, int], Address] = {}
        for start, end, primary, *_replicas in reply:
            host = primary[0].decode() if primary[0] else asked.host  # '' means "the one asked"
            where = (host, int(primary[1]))
            if where not in primaries:
                primaries[where] = self.node(*where)
            slots[int(start) : int(end) + 1] = [primaries[where]] * (int(end) - int(start) + 1)
        self._slots = slots
        self._known = tuple(primaries.values())
        self._stale = False


def resolver_for(redis: Redis) -> tuple[Resolver, float | None]:
    """The resolver that finds the server(s) a redis-py client talks to (standalone,
    Sentinel-managed or a RedisCluster), with its credentials, database and TLS, and the
    client's socket timeout."""
    if isinstance(redis, RedisCluster):
        kw = dict(redis.nodes_manager.connection_kwargs)
        tls = issubclass(kw.get("connection_class") or object, SSLConnection)
        seeds = [
            Address.from_kwargs({**kw, "host": node.host, "port": node.port}, tls=tls)
            for node in redis.nodes_manager.startup_nodes.values()
        ]
        return ClusterSlots(seeds, timeout=_timeout(kw)), _timeout(kw)
    pool = redis.connection_pool
    kw = pool.connection_kwargs
    template = Address.from_kwargs(kw, tls=issubclass(pool.connection_class, SSLConnection))
    if isinstance(pool, SentinelConnectionPool):
        manager, service = pool.sentinel_manager, pool.service_name

        async def ask() -> tuple[str, int]:
            host, port = await manager.discover_master(service)
            return str(host), int(port)

        return SentinelPrimary(ask, template), _timeout(kw)
    return Fixed(template), _timeout(kw)


def _timeout(kw: dict[str, Any]) -> float | None:
    value = kw.get("socket_timeout")
    return float(value) if value else None
