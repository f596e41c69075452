"""mjgate's credentials towards GoAPI: the secret GoAPI sends back with its webhooks and
the tokens in their paths, derived from MJGATE_WEBHOOK_SECRET (or the GoAPI key when unset), so
every replica agrees without coordination; and the `webhook_config` given with each create."""

from __future__ import annotations

import hashlib
import hmac

from gateway.settings import Settings


def goapi_secret(settings: Settings) -> str:
    base = settings.webhook_secret or f"mjgate:{settings.goapi_api_key or 'sandbox'}"
    return hmac.new(base.encode(), b"goapi-webhook-secret", hashlib.sha256).hexdigest()[:32]


def goapi_token(settings: Settings, kind: str = "tasks") -> str:
    return hmac.new(goapi_secret(settings).encode(), kind.encode(), hashlib.sha256).hexdigest()[:24]


def goapi_webhook(settings: Settings) -> dict[str, str] | None:
    """The `webhook_config` mjgate gives GoAPI with each create; None without a public URL
    (then completion is learnt by polling)."""
    if not settings.public_url:
        return None
    return {
        "endpoint": f"{settings.public_url}/webhooks/goapi/tasks/{goapi_token(settings)}",
        "secret": goapi_secret(settings),
    }
