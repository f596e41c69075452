"""Reading a request body: bounded, a client that leaves mid-body is not an error of ours, and
a body that must be a JSON object is checked in one place."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from gateway import logs
from gateway.errors import BodyTooLargeError, ClientDisconnectedError, InvalidRequestError


def json_object(raw: bytes) -> dict[str, Any]:
    """A body that must be one JSON object; 400 `invalid_request` (field `body`) otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError("body", "is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("body", "must be a JSON object")
    return body


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; stop reading as soon as the body is over it."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared[:20]) > limit:
        raise BodyTooLargeError(f"the request body is larger than {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(
                    f"the request body is larger than {limit} bytes", limit=limit
                )
            chunks.append(chunk)
    except ClientDisconnect as exc:  # not an internal error: nobody is left to answer
        logs.event("client_disconnected", path=request.url.path, read=size)
        raise ClientDisconnectedError("the client disconnected before sending its body") from exc
    return b"".join(chunks)
