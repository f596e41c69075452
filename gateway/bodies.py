"""Reading a request body: bounded, and a client that leaves mid-body is not an error of ours."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from gateway import logs
from gateway.errors import BodyTooLargeError, ClientDisconnectedError


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
