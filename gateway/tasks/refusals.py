"""Reading the upstream's refusals of a create: about the account, or about the request.

GoAPI's exact error bodies are not documented (docs/emulator.md, 'Inferred or simplified');
account-level refusals are recognised tolerantly by the notification type names GoAPI uses
for the same events (`mj_bot_banned`, ...) or plain words in the message. A 429 is about the
GoAPI key (its rate limit), not an account: no account is touched, and the sender backs off
for every account. An answer naming a `bot_id` the upstream does not know (`no account with
bot_id N`) takes that account out of rotation. Everything else non-2xx is about the request
and is passed on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from gateway import logs
from gateway.metrics import Metrics
from gateway.upstream import UpstreamAnswer
from routing.model import AccountState
from routing.store import PoolStore


class Refusal(StrEnum):
    BANNED = "banned"
    CAPTCHA = "captcha_required"
    EXPIRED = "subscription_expired"
    NO_FAST_TIME = "no_fast_time"
    UNKNOWN_ACCOUNT = "unknown_to_upstream"  # the workspace has no account with that bot_id
    RATE_LIMITED = "rate_limited"  # 429: the GoAPI key is over its rate limit
    REQUEST = "request"  # the request itself: pass on


_MARKERS: tuple[tuple[Refusal, tuple[str, ...]], ...] = (
    (Refusal.BANNED, ("mj_bot_banned", "banned")),
    (Refusal.CAPTCHA, ("mj_bot_captcha_required", "captcha")),
    (Refusal.EXPIRED, ("mj_bot_subscription_expired", "subscription expired")),
    (Refusal.NO_FAST_TIME, ("mj_bot_no_fasthour", "no fast hour", "fast hours")),
    (Refusal.UNKNOWN_ACCOUNT, ("no account with bot_id", "bot_id not found", "unknown bot_id")),
)
ACCOUNT_REFUSALS = frozenset(
    {
        Refusal.BANNED,
        Refusal.CAPTCHA,
        Refusal.EXPIRED,
        Refusal.NO_FAST_TIME,
        Refusal.UNKNOWN_ACCOUNT,
    }
)


def classify(answer: UpstreamAnswer) -> Refusal:
    """What a non-2xx create answer means for routing."""
    if answer.status == 429:
        return Refusal.RATE_LIMITED
    message = answer.message.lower()
    for refusal, markers in _MARKERS:
        if any(marker in message for marker in markers):
            return refusal
    return Refusal.REQUEST


_COOLDOWN = {Refusal.BANNED: 3600.0}


class AccountRefusals:
    """Accounts the upstream refused a create for: updated so routing stops choosing them."""

    def __init__(
        self, store: PoolStore, metrics: Metrics, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock

    async def refused(self, bot_id: int, refusal: Refusal, message: str) -> None:
        """The upstream refused a create for the account's sake: update the account."""
        reason = f"upstream: {refusal.value}"
        if refusal is Refusal.NO_FAST_TIME:
            await self.store.set_fast_time(bot_id, 0, reason=reason)
            self.metrics.account_event("fast_time_exhausted")
        elif refusal is Refusal.CAPTCHA:
            await self.store.set_state(bot_id, AccountState.PAUSED, reason=reason)
            self.metrics.account_event("paused")
        elif refusal is Refusal.EXPIRED:
            await self.store.set_state(bot_id, AccountState.DISABLED, reason=reason)
            self.metrics.account_event("disabled")
        elif refusal is Refusal.UNKNOWN_ACCOUNT:  # GoAPI's workspace has no such account
            await self.store.set_state(bot_id, AccountState.DISABLED, reason=refusal.value)
            self.metrics.account_event("unknown_to_upstream")
        else:
            until = self.clock() + _COOLDOWN.get(refusal, 60.0)
            await self.store.set_state(bot_id, AccountState.COOLING, until=until, reason=reason)
            self.metrics.account_event("cooled")
        logs.event("account_refused", bot_id=bot_id, refusal=refusal.value, message=message[:200])
