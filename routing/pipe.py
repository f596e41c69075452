"""Pipe: pipelined Redis connections for the hot path (reserve, settle, task records).

redis-py's asyncio client costs 50 to 130 µs of CPU per call (a pooled connection checked
out and back, asyncio streams, `wait_for` tasks, observability hooks); a create makes three
calls, so that was a third of mjgate's own CPU per request. A Pipe sends each command on one
socket per server (`routing.wire`): `send()` packs the command (hiredis), queues it and
returns a future; every command written in one event-loop turn goes out in one write, and
replies, which Redis sends in order, resolve the futures in order. About 9 µs per call at 32
in flight, measured in docs/benchmarks.md. Redis runs commands one at a time anyway, so one
connection per server does not serialise anything that was parallel.

Where a command goes is the injected resolver's answer (`routing.resolvers`), asked on every
(re)connect: one fixed server; the primary the sentinels name (checked with `ROLE`); or, on a
cluster, the primary of the slot of the command's first key (the first key of EVAL/EVALSHA,
else its first argument, or the `route` key given), so each task record, rate counter or
pool script lands on its own shard with no extra round trip. Commands sent in a row to one
slot run in that order.

Failures are redis-py's exception types, so callers handle one family:
- `ResponseError` (and `NoScriptError`) for an error reply, that command only;
- `ConnectionError` when a connection can't be made or drops: every command in flight on it
  fails (whether Redis ran it is unknown, as with any client), the resolver forgets that
  server and the next `send` asks it again (sentinels, slot map) and reconnects;
- `TimeoutError` when the oldest command in flight has no reply after `timeout` seconds: the
  connection is deemed dead, closed, and everything in flight fails. No reply can then reach
  the wrong caller, since a reconnect starts a fresh reply stream.
Replies meaning "not here" or "not now" (nothing ran: `MOVED`, `ASK`, `TRYAGAIN`,
`CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `READONLY`) are handled here, by the rules in
`routing.redirects`: the command is sent again, where and when they say. Scripts are called as
Redis Functions while `scripts.functions` is on, else with EVALSHA; a server that lacks them
(`NOSCRIPT`, no function) is answered by `routing.scriptcalls`. The connections themselves,
made and remade when needed, are `routing.connector`'s.

With `min_replicas` (MJGATE_REDIS_MIN_REPLICAS), every write to a server ends with
`WAIT <min_replicas> <half the timeout>`, in the same round trip, and the replies of that
write are held until WAIT answers: with fewer replicas acknowledging, each command of the
write fails (`NOREPLICAS`: it may have been applied on the primary, like a timeout), so a
reservation or a record a failover could lose is never acted upon.

A caller that stops waiting (cancelled) leaves its slot in the queue; its reply is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from routing.address import Address, Arg
from routing.connector import Connector, Parked, Repair
from routing.redirects import DEFAULT_DEADLINE, backoff, moved_to
from routing.resolvers import Fixed, Resolver, key_slot, resolver_for
from routing.scriptcalls import ScriptCalls
from routing.wire import Connection, Pending, Wait, pack

__all__ = ["Address", "Pipe"]

_ASKING = pack((b"ASKING",))
_SCRIPTS = (b"EVALSHA", b"EVAL", b"FCALL", "EVALSHA", "EVAL", "FCALL")


def _as_bytes(value: Arg) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class Pipe:
    """Lazily (re)connected pipelined connections; see the module's docstring."""

    def __init__(
        self,
        target: Address | Resolver,
        *,
        timeout: float | None = None,
        min_replicas: int = 0,
        functions: bool = True,
    ) -> None:
        self.resolver: Resolver = Fixed(target) if isinstance(target, Address) else target
        self.timeout = timeout
        wait = (
            Wait(min_replicas, max(1, round((timeout or DEFAULT_DEADLINE) * 500)))
            if min_replicas > 0
            else None
        )
        self._per_slot = self.resolver.per_slot
        self._connector = Connector(self.resolver, timeout, self._redirected, wait)
        self._last: tuple[Address | None, Connection | None] = (None, None)
        self._single: Connection | None = None  # one server (not a cluster): its connection
        self._parked: list[Parked] = []  # sent while (re)connecting
        self.scripts = ScriptCalls(functions)  # EVALSHA or FCALL; NOSCRIPT, NOFUNCTION
        self._repairing: asyncio.Task[Repair] | None = None
        self._closed = False

    @classmethod
    def of(cls, redis: Redis, *, min_replicas: int = 0, functions: bool = True) -> Pipe:
        """A pipe to the server(s) `redis` talks to (standalone, Sentinel-managed or a
        RedisCluster), with the same credentials, database, TLS and socket timeout.
        `min_replicas`, `functions`: see the module's docstring."""
        resolver, timeout = resolver_for(redis)
        return cls(resolver, timeout=timeout, min_replicas=min_replicas, functions=functions)

    # -- sending ---------------------------------------------------------------------------
    def send(self, *args: Arg, route: Arg | None = None) -> asyncio.Future[Any]:
        """Queue one command now (so commands sent in a row to one slot run in that order);
        its reply is the future's result. `route`: the key to route by, when the command's
        first argument is not one (SCRIPT LOAD, MULTI...)."""
        packed = pack(args)
        if not self._per_slot:
            single = self._single
            if single is not None and single.usable:
                return single.send(packed)
            return self._dispatch(packed, 0, None, 0.0, 0, None)
        return self._dispatch(packed, self._slot(args, route), None, 0.0, 0, None)

    @staticmethod
    def _slot(args: Sequence[Arg], route: Arg | None) -> int:
        if route is not None:
            return key_slot(_as_bytes(route))
        if args[0] in _SCRIPTS:
            return key_slot(_as_bytes(args[3])) if len(args) > 3 and int(args[2]) > 0 else 0
        return key_slot(_as_bytes(args[1])) if len(args) > 1 else 0

    def _dispatch(
        self,
        packed: bytes,
        slot: int,
        future: asyncio.Future[Any] | None,
        started: float,
        attempt: int,
        target: Address | None,
        *,
        asking: bool = False,
    ) -> asyncio.Future[Any]:
        address = target or self.resolver.address(slot)
        if address is not None:
            last_address, connection = self._last
            if address is not last_address:
                connection = self._connector.connections.get(address)
                self._last = (address, connection)
            if connection is not None and connection.usable:
                if not self._per_slot:
                    self._single = connection
                if asking:  # ASK: this command only, on that node
                    connection.send(_ASKING).add_done_callback(_ignore)
                return connection.send(packed, future, slot, started, attempt)
        if future is None:
            future = asyncio.get_running_loop().create_future()
        if self._closed:  # never reconnect after aclose: nobody would close it again
            future.set_exception(RedisConnectionError("pipe closed"))
            return future
        self._parked.append(Parked(packed, future, slot, started, attempt, target, asking))
        if self._repairing is None:
            self._repairing = asyncio.create_task(self._repair())
            self._repairing.add_done_callback(self._repaired)
        return future

    async def call(self, *args: Arg, route: Arg | None = None) -> Any:
        return await self.send(*args, route=route)

    async def transaction(self, *commands: tuple[Arg, ...]) -> list[Any]:
        """MULTI, `commands`, EXEC, sent together to the slot of the first command's key:
        their replies, applied atomically. A redirection aborts it (the error is raised)."""
        route = commands[0][1] if commands and len(commands[0]) > 1 else None
        slot = self._slot((b"MULTI",), route) if self._per_slot else 0
        queued = [
            self._dispatch(pack(command), slot, None, 0.0, -1, None)
            for command in ((b"MULTI",), *commands)
        ]
        done = self._dispatch(pack((b"EXEC",)), slot, None, 0.0, -1, None)
        try:
            for reply in queued:
                await reply  # +OK / +QUEUED, or the error that makes EXEC abort
        finally:
            result = await done
        return list(result)

    def evalsha(
        self, sha: str | bytes, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> asyncio.Future[Any]:
        """EVALSHA, sent now (EVAL with `source` if the server lost it: `routing.scriptcalls`)."""
        return self.send(*self.scripts.evalsha(sha, source, keys, args))

    async def aclose(self) -> None:
        self._closed = True
        if self._repairing is not None:
            self._repairing.cancel()
            with contextlib.suppress(BaseException):
                await self._repairing
        self._last, self._single = (None, None), None
        self._connector.close()

    # -- "not here, not now" -----------------------------------------------------------------
    def _redirected(
        self, connection: Connection, pending: Pending, error: ResponseError, kind: bytes
    ) -> None:
        loop = asyncio.get_running_loop()
        future, resolver = pending.future, self.resolver
        if self.scripts.resend(connection, pending, error, kind):
            return
        if kind in (b"MOVED", b"ASK"):
            slot, host, port = moved_to(error)
            address = resolver.node(host, port)
            if kind == b"MOVED":
                resolver.moved(slot, address)
            if pending.attempt < 0 or pending.attempt >= 5 or not self._per_slot:
                future.set_exception(error)
                return
            self._dispatch(
                pending.packed,
                pending.slot,
                future,
                pending.started,
                pending.attempt + 1,
                address,
                asking=kind == b"ASK",
            )
            return
        if kind in (b"READONLY", b"CLUSTERDOWN"):
            resolver.invalidate(connection.address)
            if kind == b"READONLY":
                self._retire(connection)
        delay = backoff(pending.attempt)
        deadline = pending.started + (self.timeout or DEFAULT_DEADLINE)
        if pending.attempt < 0 or loop.time() + delay > deadline:
            future.set_exception(error)
            return
        loop.call_later(
            delay,
            self._dispatch,
            pending.packed,
            pending.slot,
            future,
            pending.started,
            pending.attempt + 1,
            None,
        )

    def _retire(self, connection: Connection) -> None:
        if self._connector.retire(connection):
            self._last, self._single = (None, None), None

    # -- (re)connecting ------------------------------------------------------------------------
    async def _repair(self) -> Repair:
        """The connector's repair of what is parked now (see `routing.connector`)."""
        repair = await self._connector.repair(list(self._parked))
        if repair.opened:
            self._last, self._single = (None, None), None
        return repair

    def _repaired(self, task: asyncio.Task[Repair]) -> None:
        """Send what was parked; fail what the repair looked at and could not place; what
        was parked since goes through another repair."""
        self._repairing = None
        parked, self._parked = self._parked, []
        errors: dict[Address | None, BaseException]
        if task.cancelled():
            looked_at, errors = len(parked), {None: RedisConnectionError("pipe closed")}
        else:
            looked_at, errors, _ = task.result()
        for index, entry in enumerate(parked):
            address = entry.target or self.resolver.address(entry.slot)
            error = errors.get(None) or errors.get(address)
            usable = address is not None and self._connector.usable(address)
            if error is None and not usable and index < looked_at:
                error = next(  # the resolver forgot the address it could not connect to
                    iter(errors.values()),
                    RedisConnectionError(f"no Redis primary known for slot {entry.slot}"),
                )
            if error is not None:
                if not entry.future.done():
                    entry.future.set_exception(self._connector.mapped(error))
                    entry.future.exception()
                continue
            self._dispatch(
                entry.packed,
                entry.slot,
                entry.future,
                entry.started,
                entry.attempt,
                entry.target,
                asking=entry.asking,
            )


def _ignore(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
