"""Bounds on client connections, at the HTTP protocol level (uvicorn's httptools protocol):

- a request must arrive whole, headers and body, within MJGATE_REQUEST_READ_TIMEOUT seconds
  of its first byte (or of the connection, for its first request): a client that trickles
  bytes (slowloris) or opens a connection and sends nothing is answered 408
  `request_timeout` (when its headers never completed) or disconnected (mid-body), and the
  connection is closed. Idle keep-alive connections are closed by uvicorn's keep-alive timeout;
- at most MJGATE_MAX_CONNECTIONS connections per process: one more is answered 503
  `too_many_connections` and closed at once;
- a request head (request line and headers) is bounded while it is read: more than
  MAX_HEADER_BYTES of header names and values, more than MAX_HEADER_COUNT headers, or more
  than MAX_HEAD_BYTES received with the headers still incomplete (one huge header, which the
  parser buffers whole before it reports it) is answered 431 `headers_too_large` and the
  connection closed, without reading the rest. A process holds at most about MAX_HEAD_BYTES
  plus one socket read of request head per connection.

uvicorn itself has none of these: its `limit_concurrency` is checked only once a request's
headers are complete, which a slow client never reaches, and it has no setting bounding
headers with httptools (`h11_max_incomplete_event_size` is for its h11 protocol only): measured,
a 1 MiB header was read whole and 10,000 headers reached the app. An exception in the
parser's header callback ends the parse, and uvicorn answers it 400: that answer is turned
into the 431. Whatever else the parser refuses gets the envelope too (400 `invalid_request`),
never uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.headerlimit import MAX_HEAD_BYTES, MAX_HEADER_BYTES, MAX_HEADER_COUNT

LINGER_SECONDS = 2.0  # after a 431, what the client still sends is read and dropped this long


def _answer(status: int, reason: str, type_: str, message: str, **details: Any) -> bytes:
    body = orjson.dumps(
        {"code": status, "data": None, "message": message, "error": {"type": type_, **details}}
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
        self._head_bytes: int | None = 0  # received while a head is incomplete; None: a body
        self._header_count = 0
        self._header_bytes = 0
        self._head_too_large = False
        self._lingering = False

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

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # after a 431: dropped, never parsed nor kept
            return
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes is not None and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_count = self._header_bytes = 0
        self._arm()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > MAX_HEADER_COUNT or self._header_bytes > MAX_HEADER_BYTES:
            # the parser stops at a callback's exception, and uvicorn answers it 400 (below)
            self._head_too_large = True
            raise ValueError("request headers over the bounds")
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses (not HTTP, a bad Content-Length, a request line it won't
        take): the envelope with `invalid_request`, not uvicorn's text/plain, and the
        connection closed as uvicorn does."""
        if self._head_too_large:
            self._refuse_head()
            return
        self._disarm()
        if self.transport.is_closing():
            return
        message = f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})"
        self.transport.write(
            _answer(400, "Bad Request", "invalid_request", message, field="request")
        )
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0
        super().on_message_complete()

    def _refuse_head(self) -> None:
        """431 for a head over the bounds, and the connection closed: the rest of it is
        never read."""
        self._disarm()
        if self._lingering or self.transport.is_closing():  # answered already: once only
            return
        message = (
            f"the request headers are larger than {MAX_HEADER_BYTES} bytes "
            f"or more than {MAX_HEADER_COUNT}"
        )
        answer = _answer(
            431, "Request Header Fields Too Large", "headers_too_large", message,
            limit=MAX_HEADER_BYTES, max_count=MAX_HEADER_COUNT,
        )  # fmt: skip
        self.transport.write(answer)
        self._linger()

    def _linger(self) -> None:
        """Close after the answer, reading and dropping what the client still sends for
        LINGER_SECONDS at most (nginx's lingering close): a socket closed with unread data
        is reset, and the client could lose the answer it was sent."""
        self._lingering = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

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
