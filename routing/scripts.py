"""The pool's Lua scripts: package files, each loaded with the shared prelude, called by SHA.

Every script under `routing/lua/` does one atomic job. Three preludes are put in front of each
body when it is loaded: `lib.lua` (key layout, account codec, indexes, aggregates, history),
`tenants.lua` (client keys' quotas and fair queueing of staged work) and `decide.lua` (the
routing rules, reserving, staging), so every script counts and decides
with the same code. `Scripts.load()` registers them all (SCRIPT LOAD); each call runs
EVALSHA on the store's `Pipe` and, if the server lost its script cache (a restart, SCRIPT
FLUSH, a failover), EVAL with the source, which caches it again.

Conventions (see lib.lua): KEYS[1] is the pool's meta hash, ARGV[1] the key base, ARGV[2] now
in unix milliseconds from the store's clock; the rest is per script.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from functools import cache
from importlib import resources
from typing import Any

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
    "tick",
    "apply_account",
    "set_state",
    "set_fast_time",
    "remove_account",
    "rescore",
    "track_claim",
    "track_take",
    "pace_plan",
)


def _read(name: str) -> str:
    return resources.files("routing").joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def source(name: str) -> str:
    """The full text Redis runs for script `name`: what it uses of the libraries, then the body."""
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return compose(_read(name))


class Scripts:
    """The scripts of one pool, run on one pipe."""

    def __init__(self, pipe: Pipe, keys: Keys) -> None:
        self._pipe = pipe
        self._keys = keys
        self._meta = keys.pool_meta()
        self._scripts: dict[str, tuple[str, str]] = {
            name: (hashlib.sha1(source(name).encode()).hexdigest(), source(name))
            for name in SCRIPT_NAMES
        }

    async def load(self) -> None:
        """SCRIPT LOAD every script, so the first calls don't pay for it."""
        for sha, text in self._scripts.values():
            loaded = await self._pipe.call(b"SCRIPT", b"LOAD", text, route=self._meta)
            assert loaded.decode() == sha, f"Redis hashed a script to {loaded!r}, not {sha}"

    def run(self, name: str, now_ms: int, *args: str | int) -> Awaitable[Any]:
        """Run script `name` with the conventional KEYS/ARGV head, then `args`. The command
        is sent when this is called, not when the result is awaited."""
        sha, text = self._scripts[name]
        return self._pipe.evalsha(sha, text, (self._meta,), (self._keys.base, now_ms, *args))
