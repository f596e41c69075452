"""What is sent upstream for a reserved task: the client's input with the account and the mode
set, and the decision the record shows."""

from __future__ import annotations

from typing import Any

from gateway.taskrecord import TaskRecord
from routing.model import Mode
from routing.results import Decision, Reservation


def decision_of(record: TaskRecord, reservation: Reservation, parent_mode: str | None) -> Decision:
    """The reservation's decision, naming a child's relax the client asked for."""
    if (
        parent_mode not in (None, Mode.RELAX)
        and record.requested_mode == Mode.RELAX
        and reservation.decision == Decision.INHERITED
    ):
        return Decision.INHERITED_RELAX_REQUESTED
    return reservation.decision


def upstream_body(
    record: TaskRecord,
    reservation: Reservation,
    *,
    parent_upstream_id: str | None,
    parent_mode: str | None,
    webhook: dict[str, str] | None,
) -> dict[str, Any]:
    """The create body sent upstream: the client's input with `bot_id` and mode set.

    Root tasks always carry the effective `process_mode`. Child tasks carry none (they inherit
    the parent's mode) unless they run in another mode than the parent's (`inherited_relax:*`,
    including a relax the client asked for), where `process_mode: relax` is sent.
    `service_mode` is `private` (Host-Your-Account): `bot_id` is honoured only there.
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
    return {"model": "midjourney", "task_type": record.task_type, "input": task_input,
            "config": config}  # fmt: skip
