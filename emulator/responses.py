"""JSON in and out: orjson responses, the GoAPI envelope and the exception handlers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from emulator.errors import BadRequest, EmulatorError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def success(data: Any) -> JSONResponse:
    return JSONResponse({"code": 200, "data": data, "message": "success"})


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": status, "data": None, "message": message}, status_code=status, headers=headers
    )


async def read_json(request: Request) -> Any:
    """The decoded body, None when empty; BadRequest when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None


async def on_emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    return error_response(exc.status, exc.message, exc.headers() or None)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    return error_response(500, f"emulator error: {type(exc).__name__}")
