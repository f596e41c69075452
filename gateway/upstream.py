"""The upstream client: GoAPI's task API over httpx on the aiohttp transport.

httpx errors become gateway errors here, and the one distinction that matters for "never
re-send blindly" is drawn once: `UpstreamNotSentError` means the request certainly did not
reach the upstream (connection refused, connect timeout, no free pooled connection) and may be
retried on another account; every other transport failure after the request was handed to
the connection is ambiguous and becomes `UpstreamTimeoutError` (504), never retried.

httpx-aiohttp maps aiohttp's exceptions coarsely (a server that drops the connection after
reading the request surfaces as `httpx.ConnectTimeout`), so the original aiohttp exception
(`__cause__`) is consulted first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import orjson

from gateway.api.validation import check_task_id
from gateway.errors import UpstreamNotSentError, UpstreamTimeoutError


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: dict[str, Any] | None  # parsed JSON, None if not JSON
    raw: bytes
    headers: httpx.Headers
    seconds: float

    @property
    def message(self) -> str:
        if self.body and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return self.raw[:200].decode(errors="replace")

    @property
    def task(self) -> dict[str, Any] | None:
        data = self.body.get("data") if self.body else None
        return data if isinstance(data, dict) else None


_NOT_SENT_AIOHTTP: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError,)
if hasattr(aiohttp, "ConnectionTimeoutError"):  # aiohttp >= 3.10
    _NOT_SENT_AIOHTTP += (aiohttp.ConnectionTimeoutError,)


def was_not_sent(exc: httpx.TransportError) -> bool:
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, _NOT_SENT_AIOHTTP)
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits, trust_env=False)
    return transport


def task_path(task_id: str) -> str:
    """`/api/v1/task/<id>` for a checked task id (InvalidRequestError otherwise): no id can
    leave that path (no `..`, `/`, `?`, `#`, control characters), and it is quoted anyway."""
    return "/api/v1/task/" + quote(check_task_id(task_id), safe="")


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
        max_connections: int = 200,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport or default_transport(max_connections),
            timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=connect_timeout),
            headers={"x-api-key": api_key, "content-type": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> UpstreamAnswer:
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, content=body, headers=headers)
        except httpx.TransportError as exc:
            if was_not_sent(exc):
                raise UpstreamNotSentError(f"the upstream could not be reached: {exc}") from exc
            raise UpstreamTimeoutError(
                "the upstream did not answer in time; the task may or may not have been "
                "created, and mjgate will not send it again"
            ) from exc
        raw = response.content
        parsed: dict[str, Any] | None = None
        if raw:
            try:
                value = orjson.loads(raw)
                parsed = value if isinstance(value, dict) else None
            except orjson.JSONDecodeError:
                parsed = None
        return UpstreamAnswer(
            response.status_code, parsed, raw, response.headers, time.perf_counter() - started
        )

    async def create(self, body: dict[str, Any]) -> UpstreamAnswer:
        return await self.request("POST", "/api/v1/task", orjson.dumps(body))

    async def get(self, upstream_id: str) -> UpstreamAnswer:
        return await self.request("GET", task_path(upstream_id))

    async def cancel(self, upstream_id: str) -> UpstreamAnswer:
        return await self.request("DELETE", task_path(upstream_id))
