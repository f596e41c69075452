"""One pure-ASGI middleware: request id, per-request metrics and the access log line.

(Pure ASGI rather than BaseHTTPMiddleware: it adds microseconds, not a task per request.)
"""

from __future__ import annotations

import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import logs
from gateway.metrics import Metrics

_SKIP_LOG = frozenset({"/metrics", "/healthz", "/readyz"})


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")[:128]
                break
        rid = incoming or os.urandom(16).hex()
        token = logs.request_id.set(rid)
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None)
            # a mounted app (the admin API) sees its own paths: put the mount point back
            template = scope.get("root_path", "") + path if path else "unmatched"
            self.metrics.observe_request(template, scope["method"], status, seconds)
            if template not in _SKIP_LOG:
                logs.event(
                    "request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    ms=round(seconds * 1000, 2),
                )
            logs.request_id.reset(token)
