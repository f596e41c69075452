"""Liveness, readiness and the metrics exposition."""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.state import state_of
from routing.errors import StoreError
from routing.storeops import StoreOp


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready when Redis answers (within MJGATE_REDIS_TIMEOUT), the pool file (if any) was
    applied, and the pool has at least one account."""
    app = state_of(request)
    reasons = []
    try:
        async with asyncio.timeout(app.settings.redis_timeout):
            accounts = await app.redis.scard(app.store.keys.accounts())
    except Exception as exc:  # any failure means not ready; the reason is reported
        reasons.append(f"redis unreachable: {type(exc).__name__}")
    else:
        if not accounts:
            reasons.append("pool_empty: the pool has no account")
    if not app.pool_loaded:
        reasons.append(f"pool not loaded: {app.pool_error or 'loading'}")
    status = 200 if not reasons else 503
    body = {"status": "ready" if not reasons else "not_ready", "reasons": reasons}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def metrics(request: Request) -> Response:
    app = state_of(request)
    try:
        snapshot = await app.catalog.pool_snapshot(per_account=app.settings.metrics_per_account)
    except StoreError:
        app.metrics.store_error(StoreOp.POOL_SNAPSHOT)
        snapshot = None
    app.metrics.set_pool(snapshot)
    if snapshot is not None:
        try:
            app.metrics.set_tracking(*await app.tasks.schedule.counts())
        except StoreError:
            app.metrics.store_error(StoreOp.SCHEDULE)
    body, content_type = app.metrics.render()
    return Response(body, media_type=content_type)
