"""Bounds on client connections, at the HTTP protocol level (uvicorn's httptools protocol):

- a request must arrive whole, headers and body, within MJGATE_REQUEST_READ_TIMEOUT seconds
  of its first byte (or of the connection, for its first request): a client that trickles
  bytes (slowloris) or opens a connection and sends nothing is answered 408
  `request_timeout` (when its headers never completed) or disconnected (mid-body), and the
  connection is closed. Idle keep-alive connections are closed by uvicorn's keep-alive timeout;
- at most MJGATE_MAX_CONNECTIONS connections per process: one more is answered 503
  `too_many_connections` and closed at once.

uvicorn itself has neither: its `limit_concurrency` is checked only once a request's headers
are complete, which a slow client never reaches.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _answer(status: int, reason: str, type_: str, message: str) -> bytes:
    body = orjson.dumps(
        {"code": status, "data": None, "message": message, "error": {"type": type_}}
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a read deadline per request and a connection limit; the
    bounds are class attributes, set by `guarded_protocol`."""

    read_timeout: float = 20.0
    max_connections: int = 2048

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._reading_headers = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self.transport = transport
            message = "mjgate has too many open connections; retry shortly"
            transport.write(_answer(503, "Service Unavailable", "too_many_connections", message))
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._reading_headers:
            message = f"the request did not arrive within {self.read_timeout:g} s"
            self.transport.write(_answer(408, "Request Timeout", "request_timeout", message))
        self.transport.close()  # mid-body: the app sees the client disconnect


def guarded_protocol(read_timeout: float, max_connections: int) -> type[GuardedProtocol]:
    """The protocol class to give uvicorn (`http=`), with these bounds."""
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {"read_timeout": read_timeout, "max_connections": max_connections},
    )
