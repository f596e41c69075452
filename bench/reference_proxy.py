"""The reference: a bare proxy written on mjgate's own stack.

Starlette + uvicorn (uvloop, httptools, one worker, no access log) + httpx on the aiohttp
transport with the same connection limits as mjgate's upstream client. It forwards
`POST /api/v1/task` and `GET /api/v1/task/{id}` (body and end-to-end headers) to the upstream
and returns its answer (status, body, content type): no auth, no validation, no Redis. The
bench compares mjgate against it, so the figures say what mjgate's own work costs.

    python -m bench.reference_proxy --port 8181 --upstream http://127.0.0.1:8090
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Sequence

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones httpx sets itself.
_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"content-length",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    transport: httpx.AsyncBaseTransport = AiohttpTransport(limits=limits, trust_env=False)
    return transport


def create_app(
    upstream: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 200,
) -> Starlette:
    clients: list[httpx.AsyncClient] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = httpx.AsyncClient(
            base_url=upstream.rstrip("/"),
            transport=transport or default_transport(max_connections),
            timeout=httpx.Timeout(30.0, connect=5.0),
        )
        clients.append(client)
        try:
            yield
        finally:
            await client.aclose()

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _NOT_FORWARDED]
        body = await request.body()
        answer = await clients[0].request(
            request.method, request.url.path, content=body or None, headers=headers
        )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    routes = [
        Route("/api/v1/task", forward, methods=["POST"]),
        Route("/api/v1/task/{task_id}", forward, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench.reference_proxy", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the upstream")
    parser.add_argument("--max-connections", type=int, default=200)
    args = parser.parse_args(argv)
    app = create_app(args.upstream, max_connections=args.max_connections)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
