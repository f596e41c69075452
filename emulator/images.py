"""The image every output URL points at: a tiny valid PNG, built once, served for any name."""

from __future__ import annotations

import struct
import zlib
from functools import cache

from starlette.requests import Request
from starlette.responses import Response


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@cache
def tiny_png(size: int = 8) -> bytes:
    """A `size`×`size` RGB PNG with a simple gradient, so viewers show something."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 32 % 256, y * 32 % 256, 160)) for x in range(size))
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


async def serve_image(request: Request) -> Response:
    return Response(
        tiny_png(), media_type="image/png", headers={"cache-control": "public, max-age=86400"}
    )
