"""Building the upstream create body and reading the upstream's refusals.

GoAPI's exact error bodies are unconfirmed (GOAPI.md, [L]); account-level refusals are
recognised tolerantly by the notification type names GoAPI uses for the same events
(`mj_bot_banned`, ...) or plain words in the message, and a 429 is read as "this account is
busy upstream". Everything else non-2xx is about the request and is passed on to the client.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from gateway.records import TaskRecord
from gateway.upstream import UpstreamAnswer
from routing.decisions import Reservation


class Refusal(StrEnum):
    BANNED = "banned"
    CAPTCHA = "captcha_required"
    EXPIRED = "subscription_expired"
    NO_FAST_TIME = "no_fast_time"
    BUSY = "busy"  # 429 for this account
    REQUEST = "request"  # the request itself: pass on


_MARKERS: tuple[tuple[Refusal, tuple[str, ...]], ...] = (
    (Refusal.BANNED, ("mj_bot_banned", "banned")),
    (Refusal.CAPTCHA, ("mj_bot_captcha_required", "captcha")),
    (Refusal.EXPIRED, ("mj_bot_subscription_expired", "subscription expired")),
    (Refusal.NO_FAST_TIME, ("mj_bot_no_fasthour", "no fast hour", "fast hours")),
)


def classify(answer: UpstreamAnswer) -> Refusal:
    """What a non-2xx create answer means for routing."""
    if answer.status == 429:
        return Refusal.BUSY
    message = answer.message.lower()
    for refusal, markers in _MARKERS:
        if any(marker in message for marker in markers):
            return refusal
    return Refusal.REQUEST


def upstream_body(
    record: TaskRecord,
    reservation: Reservation,
    *,
    parent_upstream_id: str | None,
    parent_mode: str | None,
    webhook: dict[str, str] | None,
) -> dict[str, Any]:
    """The create body sent upstream: the client's input with `bot_id` and mode set.

    Root tasks always carry the effective `process_mode`. Child tasks carry none (GoAPI: they
    inherit the parent's mode) unless mjgate runs them in another mode than the parent's
    (`inherited_relax:*`), where `process_mode: relax` is sent [L]. `service_mode` is set to
    `private` (Host-Your-Account) because `bot_id` is honoured only there.
    """
    task_input = dict(record.request.get("input", {}))
    task_input["bot_id"] = reservation.bot_id
    if parent_upstream_id is None:
        task_input["process_mode"] = reservation.mode.value
    else:
        task_input["origin_task_id"] = parent_upstream_id
        task_input.pop("process_mode", None)
        if reservation.mode.value != parent_mode:
            task_input["process_mode"] = reservation.mode.value
    config = {k: v for k, v in record.request.get("config", {}).items() if k != "webhook_config"}
    config["service_mode"] = "private"
    if webhook:
        config["webhook_config"] = webhook
    return {
        "model": "midjourney",
        "task_type": record.task_type,
        "input": task_input,
        "config": config,
    }
