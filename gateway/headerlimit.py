"""A bound on request headers: more than MAX_HEADER_BYTES of names and values in all is
431 `headers_too_large`, before any handler runs (pure ASGI, one sum per request).

The HTTP server reads the headers before this runs; `mjgate serve` bounds what it reads too,
with these limits, while reading (`gateway.connections`; docs/operators.md: behind a reverse
proxy, bound them there as well).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import HeadersTooLargeError, gateway_error_response

MAX_HEADER_BYTES = 32 * 1024  # header names and values, all summed
MAX_HEADER_COUNT = 256  # headers in one request (`mjgate serve`)
# a request line and headers as sent, still incomplete (`mjgate serve`): the most a connection
# makes the process hold of a request head, give or take one socket read
MAX_HEAD_BYTES = 2 * MAX_HEADER_BYTES


class HeaderLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) for name, value in scope["headers"])
            if size > self.limit:
                error = HeadersTooLargeError(
                    f"the request headers are larger than {self.limit} bytes", limit=self.limit
                )
                await gateway_error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
