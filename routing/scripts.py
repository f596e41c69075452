"""The pool's Lua scripts: package files, each loaded with the shared prelude, called by SHA.

Every script under `routing/lua/` does one atomic job. Two preludes are put in front of each
body when it is loaded: `lib.lua` (key layout, account codec, indexes, aggregates, history)
and `decide.lua` (the routing rules, reserving, staging), so every script counts and decides
with the same code. `Scripts.load()` registers them all (SCRIPT LOAD); each call runs
EVALSHA and, if the server lost its script cache (a restart, SCRIPT FLUSH, a failover), loads
the script again and retries once (redis-py's `AsyncScript` does exactly that).

Conventions (see lib.lua): KEYS[1] is the pool's meta hash, ARGV[1] the key base, ARGV[2] now
in unix milliseconds from the store's clock; the rest is per script.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from routing.keys import Keys

SCRIPT_NAMES = (
    "reserve_root",
    "reserve_child",
    "settle",
    "extend_lease",
    "claim_leases",
    "dispatch_staged",
    "cancel_staged",
    "tick",
    "apply_account",
    "set_state",
    "set_fast_time",
    "remove_account",
    "rescore",
)
PRELUDES = ("lib", "decide")


def _read(name: str) -> str:
    return resources.files("routing").joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def source(name: str) -> str:
    """The full text Redis runs for script `name`: the preludes, then the body."""
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return "\n".join([*(_read(prelude) for prelude in PRELUDES), _read(name)])


class Scripts:
    """The registered scripts of one pool, bound to one Redis client."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(source(name)) for name in SCRIPT_NAMES
        }

    async def load(self) -> None:
        """SCRIPT LOAD every script, so the first calls don't pay for it."""
        for script in self._scripts.values():
            script.sha = await self._redis.script_load(script.script)

    async def run(self, name: str, now_ms: int, *args: str | int) -> Any:
        """Run script `name` with the conventional KEYS/ARGV head, then `args`."""
        script = self._scripts[name]
        argv: Sequence[str | int] = (self._keys.base, now_ms, *args)
        return await script(keys=[self._keys.pool_meta()], args=argv)
