"""The app factory. Nothing happens at import time; the lifespan owns every resource.

    create_app(settings, *, redis=None, upstream_transport=None, registry=None, clock=None)

Tests inject a Redis client, an httpx transport (the emulator's ASGI app or a MockTransport
that injects exact upstream faults), a metrics registry and a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway import health, logs, startup, tasks
from gateway.admin import routes as admin
from gateway.admin.poolwarning import PoolFileWarning
from gateway.api import batch
from gateway.api import handlers as api
from gateway.errors import GatewayError, envelope, gateway_error_response
from gateway.headerlimit import HeaderLimit
from gateway.keys.client import StaticKeys
from gateway.keys.store import KeyStore
from gateway.metrics import Metrics
from gateway.middleware import RequestMiddleware
from gateway.nowebsocket import websocket_refusal
from gateway.records import RecordStore
from gateway.redisconn import hot_pipe, redis_client
from gateway.routingerrors import routing_error_response
from gateway.settings import Settings
from gateway.state import MjGate, state_of
from gateway.tasks.loops import cancel_and_wait
from gateway.upstream import UpstreamClient
from gateway.webhooks import credentials
from gateway.webhooks import inbound as webhooks
from gateway.webhooks.alerts import AlertWebhook
from gateway.webhooks.outbound import Outbox
from routing.catalog import Catalog
from routing.errors import RoutingError, StoreError
from routing.keys import Keys
from routing.store import PoolStore


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return envelope(405, "method_not_allowed", f"{request.method} is not allowed here")
    if exc.status_code == 404:
        return envelope(404, "not_found", f"no route {request.url.path}")
    return envelope(exc.status_code, "http_error", str(exc.detail))


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return gateway_error_response(exc)


async def _routing_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RoutingError)
    if isinstance(exc, StoreError):
        state_of(request).metrics.store_error(exc.op)
    return routing_error_response(exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logs.exception("internal_error", path=request.url.path)
    return envelope(500, "internal_error", "mjgate hit an internal error; it has been logged")


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
    registry: CollectorRegistry | None = None,
    clock: Callable[[], float] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    clock = clock or time.time
    metrics = Metrics(registry, per_account=settings.metrics_per_account)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_redis = redis is None
        client = redis or redis_client(settings)
        keys = Keys(settings.redis_prefix)
        pipe = hot_pipe(settings, client)  # the hot path's connection: scripts and records
        store = PoolStore(client, keys, clock=clock, pipe=pipe)
        records = RecordStore(client, keys, ttl=settings.task_ttl, pipe=pipe)
        upstream = UpstreamClient(
            settings.goapi_base_url,
            settings.goapi_api_key,
            transport=upstream_transport,
            connect_timeout=settings.upstream_connect_timeout,
            timeout=settings.upstream_timeout,
            max_connections=settings.upstream_max_connections,
        )
        outbox = Outbox(
            client,
            keys,
            records,
            metrics,
            allow_private=settings.allow_private_webhooks,
            transport=webhook_transport,
        )
        clients = KeyStore(
            client, keys, static=StaticKeys(settings.client_keys), pipe=pipe, clock=clock
        )
        alerts = (
            AlertWebhook(
                settings.alert_webhook_url,
                settings.alert_webhook_secret,
                transport=webhook_transport,
            )
            if settings.alert_webhook_url
            else None
        )
        lifecycle = tasks.build(
            settings,
            store=store,
            records=records,
            upstream=upstream,
            metrics=metrics,
            outbox=outbox,
            policies=clients,
            clients=clients,
            alerts=alerts,
            webhook=credentials.goapi_webhook(settings),
            clock=clock,
        )
        gate = MjGate(
            settings=settings,
            redis=client,
            store=store,
            catalog=Catalog(store),
            records=records,
            upstream=upstream,
            tasks=lifecycle,
            metrics=metrics,
            clients=clients,
            outbox=outbox,
            clock=clock,
        )
        app.state.mjgate = gate
        loader = asyncio.create_task(startup.run(gate))
        lifecycle.loops.start()
        try:
            yield
        finally:
            # awaited, until it has ended: a loader still running would open a Redis
            # connection after the client below is closed, and leak it
            await cancel_and_wait(loader)
            await lifecycle.loops.stop()
            await outbox.aclose()
            if alerts is not None:
                await alerts.aclose()
            await upstream.aclose()
            await pipe.aclose()
            if own_redis:
                await client.aclose()

    bounded = [Middleware(HeaderLimit)]  # request headers over 32 KiB: 431
    routes: list[BaseRoute] = [
        websocket_refusal(),  # every WebSocket upgrade: the envelope, not uvicorn's 403
        Route("/api/v1/task", api.create_task, methods=["POST"], middleware=bounded),
        Route("/api/v1/task/{task_id}", api.get_task, methods=["GET"], middleware=bounded),
        Route("/api/v1/tasks", batch.cancel_tasks, methods=["DELETE"], middleware=bounded),
        Route("/api/v1/task/{task_id}", api.cancel_task, methods=["DELETE"], middleware=bounded),
        Route(
            "/api/v1/task/{task_id}/cancel", api.cancel_task, methods=["POST"], middleware=bounded
        ),
        Route(
            "/webhooks/goapi/tasks/{token}",
            webhooks.task_webhook,
            methods=["POST"],
            middleware=bounded,
        ),
        Route(
            "/webhooks/goapi/notifications/{token}",
            webhooks.notification_webhook,
            methods=["POST"],
            middleware=bounded,
        ),
        Route("/healthz", health.healthz, methods=["GET"], middleware=bounded),
        Route("/readyz", health.readyz, methods=["GET"], middleware=bounded),
        Route("/metrics", health.metrics, methods=["GET"], middleware=bounded),
    ]
    if settings.admin_port is None:  # else `mjgate serve` serves it alone on its own port
        routes.append(Mount("/admin/v1", app=admin.router()))
    handlers: dict[Any, Any] = {
        HTTPException: _http_error,
        GatewayError: _gateway_error,
        RoutingError: _routing_error,
        Exception: _internal_error,
    }
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=handlers,
        middleware=[
            Middleware(RequestMiddleware, metrics=metrics),
            Middleware(PoolFileWarning, settings=settings),
        ],
    )
    # `/api/v1/task/` is no route: a 404 envelope, not a 307 to a URL built from the Host header
    app.router.redirect_slashes = False
    return app
