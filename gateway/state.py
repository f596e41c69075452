"""The app's state: one typed object for everything a request handler needs, one accessor.

The app factory's lifespan builds the `MjGate` and stores it on the Starlette app; handlers
reach it through `state_of(request)` only, so `mypy --strict` checks the HTTP layer through
this seam (Starlette's `State` is untyped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from starlette.requests import Request

from gateway.keys.store import KeyStore
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.settings import Settings
from gateway.tasks import Tasks
from gateway.upstream import UpstreamClient
from gateway.webhooks.outbound import Outbox
from routing.catalog import Catalog
from routing.store import PoolStore


@dataclass
class MjGate:
    """Everything a request handler needs (built once per app by its lifespan)."""

    settings: Settings
    redis: Redis
    store: PoolStore  # the hot path's decisions
    catalog: Catalog  # what the pool is: accounts, strategy, pacing default, pool file
    records: RecordStore
    upstream: UpstreamClient
    tasks: Tasks
    metrics: Metrics
    clients: KeyStore
    outbox: Outbox
    clock: Callable[[], float]
    pool_loaded: bool = False
    pool_error: str = ""
    reloading: bool = False  # a store reset was logged and its reload has not succeeded yet


def state_of(request: Request) -> MjGate:
    """The app's MjGate (the admin-only app shares its main app's)."""
    return cast(MjGate, request.app.state.mjgate)
