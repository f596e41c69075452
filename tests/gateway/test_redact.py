"""Upstream ids and mjgate's webhook never reach a client: the pure functions."""

from __future__ import annotations

import pytest

from gateway.api.redact import OwnWebhook, redact_upstream_ids, scrub_body, scrub_bytes
from gateway.webhooks.outbound import is_public_address

UP = "5fff1d86-1111-4222-8333-444455556666"
OWN = "0a0b0c0d-aaaa-4bbb-8ccc-dddddddddddd"
OTHER = "99999999-9999-4999-8999-999999999999"


def test_upstream_ids_become_mjgates_or_are_hidden() -> None:
    message = f"input.origin_task_id: the output of task {UP} is grid"
    assert redact_upstream_ids(message, {UP: OWN}) == (
        f"input.origin_task_id: the output of task {OWN} is grid"
    )
    assert redact_upstream_ids(message.upper().replace("INPUT", "input"), {UP: OWN}).count(OWN)
    assert redact_upstream_ids(f"task {OTHER} and {UP}", {UP: OWN}) == (
        f"task [upstream id] and {OWN}"
    )
    assert redact_upstream_ids(f"task {OTHER}", {}, keep=(OTHER,)) == f"task {OTHER}"
    assert redact_upstream_ids("no ids here", {UP: OWN}) == "no ids here"
    assert redact_upstream_ids("task up-7 failed", {"up-7": OWN}) == f"task {OWN} failed"


HOOK = OwnWebhook(tokens=("tok-tasks-123", "tok-notes-456"), secret="s3cr3t-abc")


def test_mjgates_webhook_is_scrubbed_from_forwarded_tasks() -> None:
    ours = {"endpoint": "https://localhost:8443/webhooks/goapi/tasks/tok-tasks-123", "secret": "x"}
    by_secret = {"endpoint": "https://elsewhere/", "secret": "s3cr3t-abc"}
    theirs = {"endpoint": "https://localhost:9443/hook", "secret": "theirs"}
    for hook in (ours, by_secret):
        body = {"code": 200, "data": {"task_id": UP, "config": {"webhook_config": hook}}}
        scrubbed = scrub_body(body, HOOK)
        assert scrubbed["data"]["config"]["webhook_config"] == {"endpoint": "", "secret": ""}
        assert body["data"]["config"]["webhook_config"] == hook  # a copy, not changed in place
    body = {"code": 200, "data": {"config": {"webhook_config": theirs}}}
    assert scrub_body(body, HOOK) == body
    listed = scrub_body({"data": [{"config": {"webhook_config": ours}}, 3]}, HOOK)
    assert listed["data"][0]["config"]["webhook_config"]["secret"] == ""
    raw = b'{"logs": ["posted to /webhooks/goapi/tasks/tok-tasks-123 with s3cr3t-abc"]}'
    assert scrub_bytes(raw, HOOK.secrets) == (
        b'{"logs": ["posted to /webhooks/goapi/tasks/[redacted] with [redacted]"]}'
    )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("100.127.255.254", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:100.64.0.1", False),
        ("224.0.0.1", False),
        ("192.0.2.1", False),
    ],
)
def test_only_public_addresses_receive_webhooks(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_a_rendered_task_shows_no_upstream_id_in_its_error() -> None:
    from gateway.api.taskview import render
    from gateway.taskrecord import TaskRecord

    parent_upstream = "77777777-7777-4777-8777-777777777777"
    record = TaskRecord(
        task_id=OWN, client_id="c", task_type="upscale", status="failed",
        request={"input": {}, "config": {}}, upstream_id=UP, parent_id=OTHER,
        task={"task_id": UP, "config": {}, "input": {"origin_task_id": parent_upstream},
              "error": {"code": 10000, "message": f"task {UP} failed: parent {parent_upstream}",
                        "raw_message": f"{UP}"}},
        error_type="upstream_rejected",
        error_message=f"the output of task {parent_upstream} is upscale",
    )  # fmt: skip
    shown = render(record)
    assert shown["task_id"] == OWN and shown["input"]["origin_task_id"] == OTHER
    assert shown["error"]["message"] == "the output of task [upstream id] is upscale"
    assert shown["error"]["raw_message"] == OWN
    assert UP not in repr(shown) and parent_upstream not in repr(shown)
