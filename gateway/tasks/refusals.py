"""Reading the upstream's refusals of a create: about the account, or about the request.

GoAPI's exact error bodies are unconfirmed (GOAPI.md, [L]); account-level refusals are
recognised tolerantly by the notification type names GoAPI uses for the same events
(`mj_bot_banned`, ...) or plain words in the message. A 429 is about the GoAPI key (its rate
limit), not an account: no account is touched, and the sender backs off for every account. An
answer naming a `bot_id` the upstream does not know (`no account with bot_id N`) takes that
account out of rotation. Everything else non-2xx is about the request and is passed on.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.upstream import UpstreamAnswer


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
