"""Lua scripts: one loader for the whole project, and the pool's scripts.

`Script` is a script's text and the SHA1 Redis caches it under, read from a package's `lua/`
folder. It is called by SHA, and a server that lost its script cache (a restart, SCRIPT FLUSH,
a failover) is answered with EVAL and the text, which caches it again. Two thin runners, one
per kind of connection:

- `Script.on_pipe`: EVALSHA on a `routing.pipe.Pipe` (the hot path). The pipe keeps the text
  by SHA and, on NOSCRIPT, sends the EVAL at once on the same connection, so scripts sent in a
  row still run in that order.
- `Script.on_redis`: EVALSHA on a redis-py client (standalone, Sentinel or cluster: the keys
  name the slot); on NOSCRIPT, EVAL with the text.

The pool's scripts (`routing/lua/`, SCRIPT_NAMES) each do one atomic job. Their bodies use
the shared libraries (`routing.prelude.LIBRARIES`): `accounts.lua` (conventions, key layout,
account codec), `pacing.lua` (pacing rules), `indexes.lua` (indexes, aggregates, `acct_save`),
`history.lua` (an account's recorded changes), `tenants.lua` (client keys' quotas and fair
queueing of staged work), `selection.lua` (one tier's decision), `decide.lua` (the routing
rules, reserving) and `staging.lua` (staging, dispatching staged work); each script is
loaded with only the library definitions it uses
(`routing.prelude`), so every script counts and decides with the same code and pays only
for what it runs. On Redis 7+ they are called as Redis Functions instead: one library holding
every pool script (`routing.functions`, `pool_library`), loaded once per server, so a call
doesn't create the library definitions again; the EVAL text stays the fallback
(`routing.scriptcalls`). `Scripts` runs them for one pool; `Scripts.load()` registers
them all.

Conventions of the pool's scripts (see accounts.lua): KEYS[1] is the pool's meta hash, ARGV[1]
the key base, ARGV[2] now in unix milliseconds from the store's clock; the rest is per script.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from routing.address import Arg
from routing.functions import Library, build
from routing.keys import Keys
from routing.pipe import Pipe
from routing.prelude import compose

SCRIPT_NAMES = (
    "reserve_root",
    "reserve_child",
    "settle",
    "extend_lease",
    "claim_leases",
    "dispatch_staged",
    "cancel_staged",
    "restage_key",
    "run_relax",
    "tick",
    "apply_account",
    "set_state",
    "set_fast_time",
    "remove_account",
    "rescore",
    "track_claim",
    "track_take",
    "pace_plan",
    "recount_fast",
)


@dataclass(frozen=True)
class Script:
    """A Lua script: its name, the text Redis runs and the SHA1 Redis knows it by."""

    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, source: str) -> Script:
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    @classmethod
    def from_package(cls, package: str, name: str) -> Script:
        """`<package>/lua/<name>.lua`, as it is."""
        return cls.of(name, read(package, name))

    def on_pipe(self, pipe: Pipe, keys: Sequence[Arg], args: Sequence[Arg]) -> asyncio.Future[Any]:
        """Run on the pipe: sent now (not when awaited)."""
        return pipe.evalsha(self.sha, self.source, keys, args)

    async def on_redis(self, redis: Redis, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Run on a redis-py client."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)

    async def load_on_pipe(self, pipe: Pipe, route: Arg) -> None:
        """SCRIPT LOAD on the server that holds `route` (a key), so the first call doesn't
        pay for it."""
        loaded = await pipe.call(b"SCRIPT", b"LOAD", self.source, route=route)
        assert loaded.decode() == self.sha, f"Redis hashed {self.name} to {loaded!r}"


def read(package: str, name: str) -> str:
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def pool_script(name: str) -> Script:
    """Pool script `name`: the library definitions its body uses, then the body."""
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return Script.of(name, compose(read("routing", name)))


async def load_library(pipe: Pipe, library: Library, route: Arg) -> bool:
    """FUNCTION LOAD `library` where `route` (a key) lives, unless it is there already;
    False on a server that can't (functions are then off on `pipe`)."""
    if not pipe.scripts.to_load(library):
        return False
    try:
        await pipe.call(b"FUNCTION", b"LOAD", library.code, route=route)
    except ResponseError as error:
        pipe.scripts.load_refused(error)
    return pipe.scripts.functions


@cache
def pool_library() -> Library:
    """Every pool script, as one Redis Functions library."""
    return build({name: read("routing", name) for name in SCRIPT_NAMES})


def source(name: str) -> str:
    """The full text Redis runs for pool script `name`."""
    return pool_script(name).source


class Scripts:
    """The scripts of one pool, run on one pipe."""

    def __init__(self, pipe: Pipe, keys: Keys) -> None:
        self._pipe = pipe
        self._keys = keys
        self._meta = keys.pool_meta()

    async def load(self) -> None:
        """FUNCTION LOAD the library, or SCRIPT LOAD every script on a server without
        Functions, so the first calls don't pay for it."""
        if await load_library(self._pipe, pool_library(), self._meta):
            return
        for name in SCRIPT_NAMES:
            await pool_script(name).load_on_pipe(self._pipe, self._meta)

    def run(self, name: str, now_ms: int, *args: str | int) -> Awaitable[Any]:
        """Run script `name` with the conventional KEYS/ARGV head, then `args`. The command
        is sent when this is called, not when the result is awaited."""
        script = pool_script(name)
        keys, head = (self._meta,), (self._keys.base, now_ms, *args)
        calls = self._pipe.scripts
        return self._pipe.send(
            *calls.fcall(pool_library(), name, script.sha, script.source, keys, head)
        )
