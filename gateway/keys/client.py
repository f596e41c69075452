"""Who is calling: a client key resolved to a Client with its policy.

Keys are never kept or logged in the clear: a client is known by `id`, the first 16 hex digits
of the key's SHA-256. Static keys from MJGATE_CLIENT_KEYS get the default policy; whether they
may use the pass-through is MJGATE_STATIC_KEYS_PASSTHROUGH's (`bootstrap` marks them).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from routing.model import Mode
from routing.quotas import Quota


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Client:
    id: str
    name: str = ""
    # tenancy: quotas, share of staged work, pinning, expiry (gateway.keys.policy.KeyPolicy)
    quota: Quota | None = None
    weight: int = 1
    may_pin: bool = False  # may send input.bot_id to run on that account only
    expires_at: float | None = None  # unix seconds
    allowed_modes: frozenset[Mode] | None = None  # None: every mode
    staged_limit: int | None = None  # None: the setting's
    tags: tuple[str, ...] = ()  # allowed account tags; empty: any account
    rate_per_minute: int | None = None  # None: no limit
    # the pass-through (requests mjgate forwards untouched with the operator's GoAPI key):
    passthrough_models: tuple[str, ...] = ()  # models it may use there; "*": any
    passthrough_foreign_ids: bool = False  # may read/cancel ids mjgate did not create
    bootstrap: bool = False  # a static key: the pass-through is the setting's

    def cap_mode(self, mode: Mode) -> Mode:
        """The mode this client may use for a request of `mode`: the best allowed one not
        above it (turbo > fast > relax), relax when nothing else is allowed."""
        if self.allowed_modes is None or mode in self.allowed_modes:
            return mode
        for candidate in (Mode.TURBO, Mode.FAST, Mode.RELAX):
            if candidate in self.allowed_modes and _rank(candidate) < _rank(mode):
                return candidate
        return Mode.RELAX


def _rank(mode: Mode) -> int:
    return {Mode.RELAX: 0, Mode.FAST: 1, Mode.TURBO: 2}[mode]


class StaticKeys:
    """Client keys from settings, compared in constant time."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._digests = [(hashlib.sha256(s.encode()).digest(), key_id(s)) for s in secrets]

    def ids(self) -> list[str]:
        """The keys' ids (their clients' ids)."""
        return [kid for _, kid in self._digests]

    def has(self, kid: str) -> bool:
        """Is `kid` the id of one of these keys (they have no policy to change)?"""
        return any(known == kid for _, known in self._digests)

    def lookup(self, secret: str) -> Client | None:
        digest = hashlib.sha256(secret.encode()).digest()
        found: Client | None = None
        for known, kid in self._digests:  # no early exit: constant time over the list
            if hmac.compare_digest(known, digest):
                found = Client(id=kid, name="static", bootstrap=True)
        return found
