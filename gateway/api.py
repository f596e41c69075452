"""The client contract: `/api/v1/task` as GoAPI serves it, with mjgate routing in between."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.clients import Client
from gateway.errors import BodyTooLargeError, InvalidKeyError, InvalidRequestError, MissingKeyError
from gateway.records import TaskRecord
from gateway.taskview import render
from gateway.validation import validate_create


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
    client: Client | None = await request.app.state.mjgate.clients.lookup(secret)
    if client is None:
        raise InvalidKeyError("the API key is not valid")
    await request.app.state.mjgate.clients.check_rate(client)
    return client


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; stop reading as soon as the body is over it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"the request body is larger than {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"the request body is larger than {limit} bytes", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError("body", "is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("body", "must be a JSON object")
    return body


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


async def forward_untouched(
    request: Request, method: str, path: str, body: bytes | None = None
) -> Response:
    """Tasks mjgate doesn't route (other models, unknown ids): passed through as they are."""
    app = request.app.state.mjgate
    answer = await app.upstream.request(method, path, body)
    app.metrics.upstream_request("forward", str(answer.status), answer.seconds)
    return Response(
        answer.raw,
        status_code=answer.status,
        media_type=answer.headers.get("content-type", "application/json"),
        headers={"x-mjgate-decision": "forwarded"},
    )


async def create_task(request: Request) -> Response:
    started = time.perf_counter()
    app = request.app.state.mjgate
    client = await authenticate(request)
    auth_seconds = time.perf_counter() - started
    raw = await read_body(request, app.settings.body_limit)
    body = _json_body(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model", "is required")
    config = body.get("config")
    public = isinstance(config, dict) and config.get("service_mode") == "public"
    if model != "midjourney" or public:
        return await forward_untouched(request, "POST", "/api/v1/task", raw)
    create = validate_create(body, max_prompt_length=app.settings.max_prompt_length)
    parent = None
    if create.origin_task_id is not None:
        parent = await app.tasks.creator.load_parent(create, client)
        if parent is None:
            return await forward_untouched(request, "POST", "/api/v1/task", raw)
    result = await app.tasks.creator.create(
        client, create, parent=parent, idempotency_key=request.headers.get("idempotency-key")
    )
    response = task_response(result.record, {"auth": auth_seconds, **result.timings})
    if result.replayed:
        response.headers["idempotent-replayed"] = "true"
    return response


async def _own_record(request: Request, client: Client) -> TaskRecord | None:
    record: TaskRecord | None = await request.app.state.mjgate.records.load(
        request.path_params["task_id"]
    )
    if record is None or record.client_id != client.id:
        return None
    return record


async def get_task(request: Request) -> Response:
    client = await authenticate(request)
    record = await _own_record(request, client)
    if record is None:
        return await forward_untouched(
            request, "GET", f"/api/v1/task/{request.path_params['task_id']}"
        )
    record = await request.app.state.mjgate.tasks.checker.refresh(record)
    return task_response(record)


async def cancel_task(request: Request) -> Response:
    client = await authenticate(request)
    record = await _own_record(request, client)
    if record is None:
        return await forward_untouched(
            request, "DELETE", f"/api/v1/task/{request.path_params['task_id']}"
        )
    message = await request.app.state.mjgate.tasks.tracker.cancel(record)
    return Response(
        orjson.dumps({"code": 200, "data": None, "message": message}), media_type="application/json"
    )
