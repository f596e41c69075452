"""A managed client key's policy (`KeyPolicy`: what the key may do and spend) and the admin
view of a key (`KeyInfo`, never its secret), with the JSON the store keeps them as.

The policy is stored whole, as JSON, in the key's record (`gateway.keys.store`); a change
(`KeyStore.update`) replaces it whole. The key's usage is not part of it: quota counters
(routing/lua/tenants.lua) are kept by key id and period, so a new policy keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from routing.model import Mode
from routing.quotas import Quota


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
        expires = self.policy.expires_at
        return {
            "id": self.id,
            "name": self.name,
            "created_at": _iso(self.created_at),  # ISO 8601 UTC, like every admin time
            **self.policy.to_dict(),
            "expires_at": None if expires is None else _iso(expires),
        }


def _iso(seconds: float) -> str:
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")
