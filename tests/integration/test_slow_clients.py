"""Slow and excess clients over real sockets against `mjgate serve`: a request must arrive
whole within MJGATE_REQUEST_READ_TIMEOUT, a process keeps at most MJGATE_MAX_CONNECTIONS
connections open, and a request head over the header bounds is refused while it is read;
normal clients are served meanwhile."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.headerlimit import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from tests.integration.procs import CLIENT_KEY, Gateway, emulator, start_gateway, stop

pytestmark = pytest.mark.slow

ACCOUNTS = [{"bot_id": 951, "plan": "pro"}]
POOL = "accounts:\n  - {bot_id: 951, plan: pro}\n"


def _gateway(tmp_path: Path, redis_url: str, prefix: str, **extra: str) -> Iterator[Gateway]:
    with emulator(tmp_path, ACCOUNTS, pending=1, processing=1) as emu:
        pool = tmp_path / "pool.yaml"
        pool.write_text(POOL)
        gateway = start_gateway(redis_url, prefix, emu.url, pool, webhooks=False, extra=extra)
        try:
            yield gateway
        finally:
            stop(gateway.process)


@pytest.fixture
def quick_timeout(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Gateway]:
    yield from _gateway(tmp_path, redis_url, prefix, MJGATE_REQUEST_READ_TIMEOUT="2")


@pytest.fixture
def few_connections(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Gateway]:
    yield from _gateway(tmp_path, redis_url, prefix, MJGATE_MAX_CONNECTIONS="10")


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _connect(gateway: Gateway, opened: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.setblocking(False)
    opened.append(sock)
    return sock


def _closed(sock: socket.socket) -> tuple[bool, bytes]:
    """(closed by the server, what it sent before closing)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return False, received
        except ConnectionResetError:
            return True, received
        if not chunk:
            return True, received
        received += chunk


def _healthy(gateway: Gateway) -> bool:
    return httpx.get(f"{gateway.url}/healthz", timeout=5).status_code == 200


def test_trickling_clients_are_cut_off(quick_timeout: Gateway, sockets: list[socket.socket]
                                       ) -> None:  # fmt: skip
    head = (
        f"POST /api/v1/task HTTP/1.1\r\nhost: x\r\nx-api-key: {CLIENT_KEY}\r\n"
        "content-type: application/json\r\ncontent-length: 200\r\n\r\n"
    ).encode()
    idle = [_connect(quick_timeout, sockets) for _ in range(5)]  # connect, send nothing
    headers = [_connect(quick_timeout, sockets) for _ in range(20)]  # headers, a byte a second
    bodies = [_connect(quick_timeout, sockets) for _ in range(5)]  # whole headers, then a slow body
    for sock in bodies:
        sock.send(head + b"{")
    start = time.monotonic()
    sent = 0
    open_ones = idle + headers + bodies
    while time.monotonic() - start < 6:
        for sock in headers:
            if sent < len(head):
                with contextlib.suppress(OSError):
                    sock.send(head[sent : sent + 1])
        for sock in bodies:
            with contextlib.suppress(OSError):
                sock.send(b" ")
        sent += 1
        assert _healthy(quick_timeout)  # others are served meanwhile
        time.sleep(1)
        open_ones = [sock for sock in open_ones if not _closed(sock)[0]]
        if not open_ones:
            break
    assert open_ones == [], f"{len(open_ones)} slow connections still open after 6 s"


def test_a_slow_request_head_is_answered_408(
    quick_timeout: Gateway, sockets: list[socket.socket]
) -> None:
    sock = _connect(quick_timeout, sockets)
    sock.send(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
    status, _, rest = _until_closed(sock, 6).partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["type"] == "request_timeout" and body["code"] == 408


def test_connections_beyond_the_limit_are_refused(
    few_connections: Gateway, sockets: list[socket.socket]
) -> None:
    held = [_connect(few_connections, sockets) for _ in range(10)]
    time.sleep(0.3)
    extra = _connect(few_connections, sockets)
    received = _until_closed(extra, 5)
    assert received.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert b'"too_many_connections"' in received
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 5
    while True:  # the slots are free again once the server saw them close
        try:
            if _healthy(few_connections):
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)


# -- request heads over the bounds: 431 while reading, the rest never read -------------------


@pytest.fixture
def default_bounds(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Gateway]:
    yield from _gateway(tmp_path, redis_url, prefix)


def _answer_431(received: bytes) -> None:
    status, _, rest = received.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", received[:200]
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == 431 and body["error"]["type"] == "headers_too_large"
    assert body["error"]["limit"] == MAX_HEADER_BYTES


def _until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sent until it closed (an answer and the close may come apart)."""
    deadline = time.monotonic() + seconds
    received = b""
    while True:
        closed, chunk = _closed(sock)
        received += chunk
        if closed:
            return received
        assert time.monotonic() < deadline, f"no answer within {seconds} s: {received!r}"
        time.sleep(0.05)


def test_a_huge_header_is_refused_before_it_is_read(
    default_bounds: Gateway, sockets: list[socket.socket]
) -> None:
    """A 1 MiB header never completed: answered 431 once the head passes MAX_HEAD_BYTES,
    where the server used to buffer all of it and wait for the rest."""
    sock = _connect(default_bounds, sockets)
    sock.setblocking(True)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
    with contextlib.suppress(OSError):  # the server may close while this is still sending
        for _ in range(64):
            sock.sendall(b"a" * 16384)
    sock.setblocking(False)
    _answer_431(_until_closed(sock, 5))
    assert _healthy(default_bounds)


def test_ten_thousand_small_headers_are_refused(
    default_bounds: Gateway, sockets: list[socket.socket]
) -> None:
    """10,000 headers of 4 bytes (20 KB of names and values, under MAX_HEADER_BYTES): over
    MAX_HEADER_COUNT, where they used to reach the app."""
    sock = _connect(default_bounds, sockets)
    sock.setblocking(True)
    with contextlib.suppress(OSError):
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"a: b\r\n" * 10_000 + b"\r\n")
    sock.setblocking(False)
    _answer_431(_until_closed(sock, 5))
    assert _healthy(default_bounds)


def test_a_head_within_the_bounds_is_served(default_bounds: Gateway) -> None:
    headers = {f"x-h{i}": "v" * 100 for i in range(MAX_HEADER_COUNT - 10)}  # 25 KB, 246
    assert httpx.get(f"{default_bounds.url}/healthz", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /api/v1/task/" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n",
        b"POST /api/v1/task HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n",
        b"POST /api/v1/task HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
        b"transfer-encoding: chunked\r\n\r\n",
        b"\x16\x03\x01 not http at all\r\n\r\n",
    ],
    ids=["request-line-100k", "content-length-text", "length-and-chunked", "garbage"],
)
def test_what_the_parser_refuses_gets_the_envelope(
    default_bounds: Gateway, sockets: list[socket.socket], head: bytes
) -> None:
    """Found from outside: these got uvicorn's text/plain 400 with no error.type."""
    sock = _connect(default_bounds, sockets)
    sock.setblocking(True)
    with contextlib.suppress(OSError):
        sock.sendall(head)
    sock.setblocking(False)
    answer = _until_closed(sock, 5)
    status, _, body = answer.partition(b"\r\n\r\n")
    error = json.loads(body)["error"]
    if status.startswith(b"HTTP/1.1 431"):
        # a request line over the head's bound: whether the parser refuses it first (400) or
        # the bound is met first (431) depends on how the kernel splits the 100 KB into reads
        # (gateway/connections.py); found by CI, both the envelope
        assert len(head) > 2 * 32 * 1024 and error["type"] == "headers_too_large", error
    else:
        assert status.startswith(b"HTTP/1.1 400"), answer[:200]
        assert error["type"] == "invalid_request", error
    assert _healthy(default_bounds)


@pytest.mark.parametrize("path", ["/api/v1/task", "/admin/v1/accounts", "/anything"])
def test_a_websocket_upgrade_gets_the_envelope(
    default_bounds: Gateway, sockets: list[socket.socket], path: str
) -> None:
    """Found from outside: an upgrade got uvicorn's text/plain 403 with no error.type."""
    sock = _connect(default_bounds, sockets)
    sock.setblocking(True)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n".encode()
    )
    sock.setblocking(False)
    answer = _until_closed(sock, 5)
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 404"), answer[:300]
    assert b"application/json" in status.lower()
    error = json.loads(body)["error"]
    assert error["type"] == "not_found", error
    assert _healthy(default_bounds)
