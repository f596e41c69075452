"""Managed client keys: created and revoked through the admin API, stored only hashed.

A key's record lives in Redis under `Keys.client_key(<id>)`, where the id is the first 16 hex
digits of the secret's SHA-256 (`gateway.clients.key_id`, the same id static keys and task
records use). The record holds the full digest, the key's name and its policy; the secret
itself is shown once, by `create`, and never stored. `Keys.client_keys()` orders the ids by
creation time, for listing.

Lookup is one HGETALL and caches nothing, so a revocation or a policy change (`update`) is
effective at once on every replica. Static keys (MJGATE_CLIENT_KEYS) are checked first: they
need no round trip, keep working while Redis is down, and stay the bootstrap path before any
key is created. The request path (lookup, rate count) runs on the hot-path `Pipe`; the admin
API on redis-py.

Rate limits are a sliding-window counter shared through Redis: the current minute's count
and the previous minute's, weighted by how much of the previous minute still falls in the
last 60 seconds. One MULTI/EXEC round trip per request, atomic, on every replica; a refused
request is taken back out so a client hammering past its limit isn't locked out for longer.
The window is derived from the injected clock, decided once here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TypeVar

import orjson
from redis.asyncio import Redis

from gateway.errors import KeyExpiredError, RateLimitedError
from gateway.keys.client import Client, StaticKeys, key_id
from gateway.keys.policy import KeyInfo, KeyPolicy
from routing.errors import store_errors
from routing.keys import Keys
from routing.pipe import Pipe
from routing.scripts import Script
from routing.storeops import StoreOp

T = TypeVar("T")
WINDOW = 60  # seconds: limits are per minute
SECRET_PREFIX = "mjg_"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def retry_after(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Whole seconds until one more request fits: `current` excludes the refused request,
    `elapsed` is how far into the current window we are."""
    if current + 1 <= limit:  # later in this window: previous * (1 - f) + current + 1 <= limit
        if previous <= 0:
            return 1
        wait = WINDOW - WINDOW * (limit - current - 1) / previous - elapsed
    else:  # once this window is the previous one: current * (1 - f) + 1 <= limit
        wait = (WINDOW - elapsed) + max(0.0, WINDOW - WINDOW * (limit - 1) / current)
    return max(1, math.ceil(wait - 1e-9))


class KeyStore:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        static: StaticKeys,
        pipe: Pipe,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.pipe = pipe
        self.keys = keys
        self.static = static
        self.clock = clock
        self._update_script = Script.from_package("gateway", "key_update")

    async def _call(self, op: StoreOp, fn: Callable[[], Awaitable[T]]) -> T:
        async with store_errors(op):
            return await fn()

    # -- the request path ---------------------------------------------------------------------
    async def lookup(self, secret: str) -> Client | None:
        static = self.static.lookup(secret)
        if static is not None:
            return static
        digest = hashlib.sha256(secret.encode()).hexdigest()
        kid = digest[:16]
        raw = await self._call(
            StoreOp.KEY_LOOKUP, lambda: self.pipe.call(b"HGETALL", self.keys.client_key(kid))
        )
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in zip(raw[::2], raw[1::2], strict=True)}
        if not hmac.compare_digest(fields.get("d", ""), digest):
            return None
        policy = KeyPolicy.from_dict(orjson.loads(fields.get("p", "{}")))
        if policy.expires_at is not None and policy.expires_at <= self.clock():
            raise KeyExpiredError("this API key has expired; ask the operator for a new one")
        return Client(
            id=kid,
            name=fields.get("n", ""),
            quota=policy.quota if policy.quota.limited else None,
            weight=policy.weight,
            may_pin=policy.allow_pinning,
            expires_at=policy.expires_at,
            allowed_modes=policy.allowed_modes,
            staged_limit=policy.staged_limit,
            tags=policy.tags,
            rate_per_minute=policy.rate_per_minute,
            passthrough_models=policy.passthrough_models,
            passthrough_foreign_ids=policy.passthrough_foreign_ids,
        )

    async def check_rate(self, client: Client) -> None:
        """Count one request of `client`; RateLimitedError (429, Retry-After) beyond its
        requests-per-minute. No limit, no round trip."""
        limit = client.rate_per_minute
        if not limit:
            return
        now = self.clock()
        window = int(now // WINDOW)
        elapsed = now - window * WINDOW
        current_key = self.keys.client_rate(client.id, window)
        previous_key = self.keys.client_rate(client.id, window - 1)

        current, _, previous_raw = await self._call(
            StoreOp.RATE_LIMIT,
            lambda: self.pipe.transaction(
                (b"INCR", current_key), (b"EXPIRE", current_key, 2 * WINDOW), (b"GET", previous_key)
            ),
        )
        previous = int(previous_raw or 0)
        estimate = previous * (WINDOW - elapsed) / WINDOW + int(current)
        if estimate <= limit:
            return
        # Refused requests don't count: a client retrying too early isn't pushed further back.
        await self._call(StoreOp.RATE_LIMIT, lambda: self.pipe.call(b"DECR", current_key))
        wait = retry_after(limit, previous, int(current) - 1, elapsed)
        raise RateLimitedError(
            f"this key is limited to {limit} requests per minute; retry in {wait} s",
            headers={"retry-after": str(wait)},
            limit=limit,
            retry_after=wait,
        )

    # -- the admin API ------------------------------------------------------------------------
    async def create(self, name: str, policy: KeyPolicy) -> tuple[KeyInfo, str]:
        """A new key; the secret is returned here and nowhere else."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).hexdigest()
        info = KeyInfo(
            id=key_id(secret), name=name, policy=policy, created_at=round(self.clock(), 3)
        )
        fields = ["d", digest, "n", name, "p", _policy_json(policy), "ct", repr(info.created_at)]

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self.keys.client_key(info.id), items=fields)
                pipe.zadd(self.keys.client_keys(), {info.id: info.created_at})
                await pipe.execute()

        await self._call(StoreOp.KEY_CREATE, write)
        return info, secret

    async def get(self, kid: str) -> KeyInfo | None:
        raw = await self._call(
            StoreOp.KEY_GET, lambda: self.redis.hgetall(self.keys.client_key(kid))
        )
        return _info(kid, raw) if raw else None

    async def list(self) -> list[KeyInfo]:
        async def read() -> list[KeyInfo]:
            members = await self.redis.zrange(self.keys.client_keys(), 0, -1)
            ids = [_text(member) for member in members if isinstance(member, bytes | str)]
            async with self.redis.pipeline(transaction=False) as pipe:
                for kid in ids:
                    pipe.hgetall(self.keys.client_key(kid))
                rows = await pipe.execute()
            return [_info(kid, raw) for kid, raw in zip(ids, rows, strict=True) if raw]

        return await self._call(StoreOp.KEY_LIST, read)

    async def client_ids(self) -> tuple[str, ...]:
        """Every client id that may have tasks: the static keys' and the managed keys'."""
        members = await self._call(
            StoreOp.KEY_LIST, lambda: self.redis.zrange(self.keys.client_keys(), 0, -1)
        )
        return (*self.static.ids(), *(_text(m) for m in members if isinstance(m, bytes | str)))

    async def update(self, kid: str, change: Callable[[KeyInfo], KeyInfo]) -> KeyInfo | None:
        """Replace a managed key's name and policy with those of `change(the key as stored)`
        (which may raise to refuse it); None when there is no managed key with this id. A
        compare-and-set (gateway/lua/key_update.lua): when another change lands in between,
        `change` runs again on it, so none is lost, and a key revoked meanwhile is not written
        back. Only the name and policy change: the key's usage (quota counters per period,
        tasks in flight) is kept by key id, so it carries over."""
        key = self.keys.client_key(kid)

        async def swap() -> KeyInfo | None:
            while True:
                raw = await self.redis.hgetall(key)
                if not raw:
                    return None
                before = _info(kid, raw)
                changed = change(before)
                after = replace(before, name=changed.name, policy=changed.policy)
                stored = {_text(k): _text(v) for k, v in raw.items()}
                args = (stored.get("p", ""), stored.get("n", ""), _policy_json(after.policy),
                        after.name)  # fmt: skip
                written = await self._update_script.on_redis(self.redis, (key,), args)
                if written != -1:  # -1: changed meanwhile, read it again
                    return after if written == 1 else None

        return await self._call(StoreOp.KEY_UPDATE, swap)

    async def revoke(self, kid: str) -> bool:
        """Delete a managed key; False when there is none with this id."""

        async def delete() -> bool:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.client_key(kid))
                pipe.zrem(self.keys.client_keys(), kid)
                deleted, _ = await pipe.execute()
            return bool(deleted)

        return await self._call(StoreOp.KEY_REVOKE, delete)


def _info(kid: str, raw: Mapping[bytes | str, bytes | str]) -> KeyInfo:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return KeyInfo(
        id=kid,
        name=fields.get("n", ""),
        policy=KeyPolicy.from_dict(orjson.loads(fields.get("p", "{}"))),
        created_at=float(fields.get("ct") or 0),
    )


def _policy_json(policy: KeyPolicy) -> str:
    return orjson.dumps(policy.to_dict()).decode()
