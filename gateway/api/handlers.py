"""The client contract: `/api/v1/task` as GoAPI serves it, with mjgate routing in between.

Requests mjgate does not route go through the pass-through (`gateway.api.passthrough`), which is
a permission of the client key. Task ids in paths are checked before anything else is done
with them (`gateway.validation.check_task_id`): an id that is not a plain task id is 400.
"""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.passthrough import (
    forward_untouched,
    require_foreign_ids,
    require_model,
    require_not_mjgates,
)
from gateway.api.redact import redact_upstream_ids
from gateway.api.taskview import render
from gateway.api.validation import check_task_id, validate_create
from gateway.bodies import json_object, read_body
from gateway.errors import (
    InvalidKeyError,
    InvalidRequestError,
    MissingKeyError,
    UpstreamError,
)
from gateway.keys.client import Client
from gateway.state import state_of
from gateway.taskrecord import TaskRecord
from gateway.upstream import task_path
from gateway.webhooks.outbound import check_endpoint


def client_secret(request: Request) -> str:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def authenticate(request: Request) -> Client:
    secret = client_secret(request)
    if not secret:
        raise MissingKeyError("an API key is required (x-api-key header)")
    client: Client | None = await state_of(request).clients.lookup(secret)
    if client is None:
        raise InvalidKeyError("the API key is not valid")
    await state_of(request).clients.check_rate(client)
    return client


def task_response(record: TaskRecord, timings: dict[str, float] | None = None) -> Response:
    body = orjson.dumps({"code": 200, "data": render(record), "message": "success"})
    headers = {"x-mjgate-decision": record.decision or "none"}
    if record.bot_id is not None:
        headers["x-mjgate-bot-id"] = str(record.bot_id)
    if record.mode:
        headers["x-mjgate-mode"] = record.mode
    if timings:
        headers["server-timing"] = ", ".join(
            f"{name};dur={seconds * 1000:.2f}" for name, seconds in timings.items()
        )
    return Response(body, media_type="application/json", headers=headers)


async def create_task(request: Request) -> Response:
    started = time.perf_counter()
    app = state_of(request)
    client = await authenticate(request)
    auth_seconds = time.perf_counter() - started
    raw = await read_body(request, app.settings.body_limit)
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model", "is required")
    config = body.get("config")
    public = isinstance(config, dict) and config.get("service_mode") == "public"
    if model != "midjourney" or public:
        require_model(client, model, app.settings)
        return await forward_untouched(request, "POST", "/api/v1/task", raw)
    create = validate_create(body, max_prompt_length=app.settings.max_prompt_length)
    if create.webhook is not None and not app.settings.allow_private_webhooks:
        await check_endpoint(create.webhook.endpoint, "config.webhook_config.endpoint")
    parent = None
    if create.origin_task_id is not None:
        parent = await app.tasks.creator.load_parent(create, client)
        if parent is None:
            require_model(client, model, app.settings)
            require_foreign_ids(client, app.settings)
            await require_not_mjgates(request, client, create.origin_task_id)
            return await forward_untouched(request, "POST", "/api/v1/task", raw)
    mapping = {parent.upstream_id: parent.task_id} if parent and parent.upstream_id else {}
    with _redacted(mapping):
        result = await app.tasks.creator.create(
            client, create, parent=parent, idempotency_key=request.headers.get("idempotency-key")
        )
    response = task_response(result.record, {"auth": auth_seconds, **result.timings})
    if result.replayed:
        response.headers["idempotent-replayed"] = "true"
    for quota, left in result.quota:  # e.g. x-mjgate-quota-remaining-jobs-day
        response.headers[f"x-mjgate-quota-remaining-{quota.replace('_', '-')}"] = str(left)
    return response


class _redacted:
    """Upstream refusals relayed for mjgate's own tasks show mjgate's ids, never upstream ones."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, UpstreamError):
            exc.message = redact_upstream_ids(exc.message, self.mapping)
            exc.args = (exc.message,)


async def _task_id(request: Request) -> tuple[Client, str]:
    client = await authenticate(request)
    return client, check_task_id(request.path_params["task_id"])


async def _own_record(request: Request, client: Client, task_id: str) -> TaskRecord | None:
    record: TaskRecord | None = await state_of(request).records.load(task_id)
    if record is None or record.client_id != client.id:
        return None
    return record


async def _own_or_forwarded(request: Request, method: str) -> TaskRecord | Response:
    """The caller's own task's record, or the upstream's answer for an id mjgate doesn't know
    (when the key may reach foreign ids)."""
    client, task_id = await _task_id(request)
    record = await _own_record(request, client, task_id)
    if record is None:
        require_foreign_ids(client, state_of(request).settings)
        await require_not_mjgates(request, client, task_id)
        return await forward_untouched(request, method, task_path(task_id))
    return record


def _mapping(record: TaskRecord) -> dict[str, str]:
    return {record.upstream_id: record.task_id} if record.upstream_id else {}


async def get_task(request: Request) -> Response:
    record = await _own_or_forwarded(request, "GET")
    if isinstance(record, Response):
        return record
    app = state_of(request)
    with _redacted(_mapping(record)):
        record = await app.tasks.checker.refresh(record)
    response = task_response(record)
    # how old this view is: the upstream's last news (or mjgate's last change); a refresh that
    # the upstream did not answer in time leaves the stored record, and this says how stale
    age = max(0.0, app.clock() - record.updated_at)
    response.headers["x-mjgate-record-age"] = f"{age:.1f}"
    return response


async def cancel_task(request: Request) -> Response:
    """`DELETE /api/v1/task/{id}`, and `POST /api/v1/task/{id}/cancel` (an alias some
    clients use)."""
    record = await _own_or_forwarded(request, "DELETE")
    if isinstance(record, Response):
        return record
    with _redacted(_mapping(record)):
        message = await state_of(request).tasks.canceller.cancel(record)
    return Response(
        orjson.dumps({"code": 200, "data": None, "message": message}), media_type="application/json"
    )
