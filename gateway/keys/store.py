"""Managed client keys: created and revoked through the admin API, stored only hashed.

A key's record lives in Redis under `Keys.client_key(<id>)`, where the id is the first 16 hex
digits of the secret's SHA-256 (`gateway.clients.key_id`, the same id static keys and task
records use). The record holds the full digest, the key's name and its policy; the secret
itself is shown once, by `create`, and never stored. `Keys.client_keys()` orders the ids by
creation time, for listing.

Lookup is one HGETALL and caches nothing, so a revocation is effective at once on every
replica. Static keys (MJGATE_CLIENT_KEYS) are checked first: they need no round trip, keep
working while Redis is down, and stay the bootstrap path before any key is created. The
request path (lookup, rate count) runs on the hot-path `Pipe`; the admin API on redis-py.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis

from gateway.errors import KeyExpiredError, RateLimitedError
from gateway.keys.client import Client, StaticKeys, key_id
from routing.errors import store_errors
from routing.keys import Keys
from routing.model import Mode
from routing.pipe import Pipe
from routing.quotas import Quota
from routing.storeops import StoreOp

T = TypeVar("T")
WINDOW = 60  # seconds: limits are per minute
SECRET_PREFIX = "mjg_"


@dataclass(frozen=True)
class KeyPolicy:
    """What a key may do. None/empty means "no limit" (the settings' staged limit)."""

    # tenancy: quotas (routing.quotas), share of staged work, pinning, expiry (unix seconds)
    quota: Quota = field(default_factory=Quota)
    weight: int = 1
    allow_pinning: bool = False
    expires_at: float | None = None
    allowed_modes: frozenset[Mode] | None = None
    tags: tuple[str, ...] = ()  # allowed account tags
    staged_limit: int | None = None
    rate_per_minute: int | None = None
    # the pass-through (forwarded untouched with the operator's GoAPI key); none by default
    passthrough_models: tuple[str, ...] = ()  # models it may use there; "*": any
    passthrough_foreign_ids: bool = False  # may read/cancel task ids mjgate did not create

    def to_dict(self) -> dict[str, Any]:
        modes = None if self.allowed_modes is None else _sorted_modes(self.allowed_modes)
        return {
            **_quota_dict(self.quota),
            "weight": self.weight,
            "allow_pinning": self.allow_pinning,
            "expires_at": self.expires_at,
            "allowed_modes": modes,
            "tags": list(self.tags),
            "staged_limit": self.staged_limit,
            "rate_per_minute": self.rate_per_minute,
            "passthrough_models": list(self.passthrough_models),
            "passthrough_foreign_ids": self.passthrough_foreign_ids,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KeyPolicy:
        modes = raw.get("allowed_modes")
        return cls(
            quota=Quota(**{name: raw[name] for name in QUOTA_FIELDS if raw.get(name) is not None}),
            weight=int(raw.get("weight") or 1),
            allow_pinning=bool(raw.get("allow_pinning", False)),
            expires_at=raw.get("expires_at"),
            allowed_modes=None if modes is None else frozenset(Mode(m) for m in modes),
            tags=tuple(raw.get("tags") or ()),
            staged_limit=raw.get("staged_limit"),
            rate_per_minute=raw.get("rate_per_minute"),
            passthrough_models=tuple(raw.get("passthrough_models") or ()),
            passthrough_foreign_ids=bool(raw.get("passthrough_foreign_ids", False)),
        )


QUOTA_FIELDS = (
    "jobs_per_day",
    "jobs_per_month",
    "fast_seconds_per_day",
    "fast_seconds_per_month",
    "max_in_flight",
    "timezone",
)


def _quota_dict(quota: Quota) -> dict[str, Any]:
    return {name: getattr(quota, name) for name in QUOTA_FIELDS}


def _sorted_modes(modes: frozenset[Mode]) -> list[str]:
    return [m.value for m in (Mode.RELAX, Mode.FAST, Mode.TURBO) if m in modes]


@dataclass(frozen=True)
class KeyInfo:
    """A managed key as the admin API shows it: never the secret."""

    id: str
    name: str
    policy: KeyPolicy = field(default_factory=KeyPolicy)
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created_at, UTC).isoformat(timespec="seconds")
        return {
            "id": self.id,
            "name": self.name,
            "created_at": created.replace("+00:00", "Z"),  # ISO 8601 UTC, like every admin time
            **self.policy.to_dict(),
        }


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
        policy_json = orjson.dumps(policy.to_dict()).decode()
        fields = ["d", digest, "n", name, "p", policy_json, "ct", repr(info.created_at)]

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
