"""AlertWebhook: operator alerts POSTed to `MJGATE_ALERT_WEBHOOK_URL` (Slack-style incoming
webhooks, an alert router, a script).

Today one event: a client key crossed a soft threshold (80%, 95%) of one of its quotas, once
per period (`quota_threshold`, as logged and counted). The body is JSON:
`{"event": "quota_threshold", "key": <key id>, "key_name": ..., "quota": "jobs_day",
"percent": 80, "at": <unix seconds>}`; with `MJGATE_ALERT_WEBHOOK_SECRET` it is signed as
client webhooks are (`x-mjgate-signature: sha256=<HMAC-SHA256 of the body>`).

Best effort, off the request's path: sent in the background, tried again after 1 and 2 s on
a failure (no answer, or not 2xx), then given up with a log line (`alert_webhook_failed`). The
durable record of the event is its log line and `mjgate_quota_thresholds_total`, which the
`MjgateQuotaNearlySpent` alert rule watches; the webhook is a convenience on top. The URL is
the operator's own setting, so private addresses are allowed (unlike clients' webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import orjson

from gateway import logs
from gateway.webhooks.outbound import signature

RETRY_DELAYS = (1.0, 2.0)  # seconds before the 2nd and 3rd attempts
TIMEOUT = 5.0


class AlertWebhook:
    def __init__(
        self,
        url: str,
        secret: str = "",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.url = url
        self.secret = secret
        self.retry_delays = retry_delays
        self.client = httpx.AsyncClient(transport=transport, timeout=TIMEOUT)
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, event: str, **fields: Any) -> None:
        """Queue one alert (never blocks, never raises)."""
        body = orjson.dumps({"event": event, **fields, "at": round(time.time(), 3)})
        task = asyncio.create_task(self._deliver(event, body))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, event: str, body: bytes) -> None:
        headers = {"content-type": "application/json"}
        if self.secret:
            headers["x-mjgate-signature"] = signature(self.secret, body)
        why, delays = "", (0.0, *self.retry_delays)
        for delay in delays:
            await asyncio.sleep(delay)
            try:
                answer = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                why = type(exc).__name__
                continue
            if 200 <= answer.status_code < 300:
                return
            why = f"status {answer.status_code}"
        logs.event("alert_webhook_failed", logging.WARNING, alert=event, attempts=len(delays),
                   reason=why)  # fmt: skip

    async def aclose(self) -> None:
        """Stop: alerts still being tried are given up (they are logged and counted)."""
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.client.aclose()
