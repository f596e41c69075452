"""The operator's alert webhook (gateway.webhooks.alerts): tried again on a failure, then
given up with a log line; never raises into the request that raised the alert."""

from __future__ import annotations

import asyncio

import httpx

from gateway.logs import LOGGER
from gateway.webhooks.alerts import AlertWebhook
from tests.gateway.test_logs import Collect


async def test_a_failing_receiver_is_tried_three_times_then_logged() -> None:
    tried: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        tried.append(request)
        return httpx.Response(503)

    collected = Collect()
    LOGGER.addHandler(collected)
    alerts = AlertWebhook("http://127.0.0.1:9/a", transport=httpx.MockTransport(refuse),
                          retry_delays=(0.01, 0.01))  # fmt: skip
    try:
        alerts.send("quota_threshold", key="k", quota="jobs_day", percent=80)
        for _ in range(100):
            if any(line["event"] == "alert_webhook_failed" for line in collected.lines):
                break
            await asyncio.sleep(0.02)
    finally:
        await alerts.aclose()
        LOGGER.removeHandler(collected)
    assert len(tried) == 3 and "x-mjgate-signature" not in tried[0].headers  # no secret
    failed = next(line for line in collected.lines if line["event"] == "alert_webhook_failed")
    assert (failed["alert"], failed["attempts"], failed["reason"]) == (
        "quota_threshold", 3, "status 503")  # fmt: skip


async def test_stopping_gives_up_what_is_still_being_tried() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    alerts = AlertWebhook("http://127.0.0.1:9/a", transport=httpx.MockTransport(hang),
                          retry_delays=(30.0,))  # fmt: skip
    alerts.send("quota_threshold", key="k")
    await asyncio.sleep(0.05)  # first attempt failed; waiting 30 s for the next
    await asyncio.wait_for(alerts.aclose(), timeout=2)
