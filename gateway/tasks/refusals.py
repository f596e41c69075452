"""Reading the upstream's refusals of a create: about the account, or about the request.

GoAPI's exact error bodies are not documented (docs/emulator.md, 'Inferred or simplified');
account-level refusals are recognised tolerantly by the notification type names GoAPI uses
for the same events (`mj_bot_banned`, ...) or plain words in the message. A 429 is about the
GoAPI key (its rate limit), not an account: no account is touched, and the sender backs off
for every account. An answer naming a `bot_id` the upstream does not know (`no account with
bot_id N`) takes that account out of rotation.

A 5xx is about GoAPI itself, not an account (every account goes through the same GoAPI), and
it is never retried on another account: the task might have been created before the error
(then a retry would run it twice, on two accounts, and cost twice) and another account would
meet the same failing upstream. It ends the create in one of three ways (docs/lifecycle.md,
"Upstream answers to a create"):
- a 504 or 524 (the upstream's own front timed out waiting for it: the request was passed
  on and may still create the task) is **ambiguous**, as a read timeout is: the reservation is
  kept, never re-sent;
- a 5xx whose message is about the request (GoAPI answers a prompt format problem with a 500:
  `Invalid Param Format: ...`) is the client's error: passed on as a 4xx (400), never a 5xx;
- any other 5xx is the upstream failing to create it: released at once, `upstream_unavailable`.
Everything else non-2xx is about the request and is passed on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from enum import StrEnum

from gateway import logs
from gateway.errors import GatewayError, UpstreamFailedError, UpstreamRejectedError
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
    GATEWAY_TIMEOUT = "gateway_timeout"  # 504/524: sent on, may exist upstream: ambiguous
    UPSTREAM_FAILED = "upstream_failed"  # another 5xx: GoAPI failed to create it
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


# 5xx messages about the request itself ([M]: GoAPI's 500 for a prompt format problem)
_REQUEST_MARKERS = ("invalid param", "param format", "invalid request", "bad request")
# a proxy in front of the upstream gave up waiting for it after passing the request on
# (504 Gateway Timeout; 524 is Cloudflare's "a timeout occurred")
GATEWAY_TIMEOUTS = frozenset({504, 524})
DEFAULT_RETRY_AFTER = 5  # seconds a client is asked to wait after a 5xx without Retry-After


def classify(answer: UpstreamAnswer) -> Refusal:
    """What a non-2xx create answer means for routing."""
    if answer.status == 429:
        return Refusal.RATE_LIMITED
    message = answer.message.lower()
    for refusal, markers in _MARKERS:
        if any(marker in message for marker in markers):
            return refusal
    if answer.status >= 500:
        if any(marker in message for marker in _REQUEST_MARKERS):
            return Refusal.REQUEST
        if answer.status in GATEWAY_TIMEOUTS:
            return Refusal.GATEWAY_TIMEOUT
        return Refusal.UPSTREAM_FAILED
    return Refusal.REQUEST


def retry_after(answer: UpstreamAnswer, default: float, now: float) -> float:
    """The upstream's Retry-After in seconds (1 to 3600): delay-seconds, or an HTTP-date
    (RFC 9110, 10.2.3) counted from `now` (unix seconds); `default` when absent or unreadable."""
    value = answer.headers.get("retry-after", "").strip()
    try:
        wait = float(value)
    except ValueError:
        try:
            wait = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
    if math.isnan(wait):
        return default
    return min(3600.0, max(1.0, wait))


def passed_on(answer: UpstreamAnswer, refusal: Refusal, now: float) -> GatewayError:
    """The client's error for a create that was refused for the request, or that the upstream
    failed (its reservation released): `upstream_unavailable` (502, Retry-After) for a 5xx,
    `upstream_rejected` with GoAPI's 4xx status, or 400 for a 5xx about the request (never a
    5xx for the client's input). Both carry `upstream_status`."""
    if refusal is Refusal.UPSTREAM_FAILED:
        wait = retry_after(answer, DEFAULT_RETRY_AFTER, now)
        said = answer.body.get("message") if answer.body else None  # GoAPI's, not an HTML page
        return UpstreamFailedError(
            answer.status, said if isinstance(said, str) else "", round(wait)
        )
    status = answer.status if answer.status < 500 else 400
    return UpstreamRejectedError(status, answer.message, upstream_status=answer.status)


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
