"""Client webhooks: mjgate delivers `{"timestamp", "data"}` to the client's own endpoint.

As GoAPI would, with the client's `x-webhook-secret`, plus `x-mjgate-signature:
sha256=<hex HMAC of the body keyed by that secret>`. Deliveries are persisted in Redis (an
outbox sorted set: one entry per task, due time as score) so a replica that dies loses nothing;
every replica's loop claims due entries atomically and retries with exponential backoff (1 s,
2 s, 4 s ... up to 10 attempts). The body is the task's latest state at delivery time, so a
retried delivery never sends stale news. Endpoints that do not resolve, or resolve to any
address that is not globally routable (private, loopback, link-local, carrier-grade NAT
100.64.0.0/10, reserved, ...), are refused unless MJGATE_ALLOW_PRIVATE_WEBHOOKS is on (the
sandbox turns it on): at create time (`check_endpoint`, 400 naming the field, nothing
reserved), and again at each delivery (DNS may have changed since).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import time
from urllib.parse import urlparse

import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import logs
from gateway.api.taskview import render
from gateway.errors import InvalidRequestError
from gateway.metrics import Metrics
from gateway.records import RecordStore
from gateway.taskrecord import TaskRecord
from routing.keys import Keys
from routing.scripts import Script
from routing.storeops import StoreOp

MAX_ATTEMPTS = 10
RESOLVE_TIMEOUT = 5.0  # seconds to resolve a client's webhook host


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_public_address(text: str) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address as its IPv4)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def is_private_endpoint(url: str) -> bool:
    """True when the endpoint's host does not resolve, or resolves to any address that is not
    globally routable (carrier-grade NAT 100.64.0.0/10 included)."""
    try:
        host = urlparse(url).hostname or ""
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None), RESOLVE_TIMEOUT
        )
    except (OSError, UnicodeError, ValueError, TimeoutError):
        return True  # unresolvable: refuse rather than guess
    return not infos or not all(is_public_address(str(info[4][0])) for info in infos)


async def check_endpoint(url: str, field: str) -> None:
    """A client's webhook endpoint, checked at create time: 400 naming `field` when mjgate
    would refuse to deliver to it."""
    if await is_private_endpoint(url):
        raise InvalidRequestError(
            field,
            "does not resolve to a public address (private, loopback, link-local, carrier-grade"
            " NAT and unresolvable hosts are refused)",
        )


class Outbox:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        records: RecordStore,
        metrics: Metrics,
        *,
        allow_private: bool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.redis = redis
        self.key = keys.outbox()
        self.attempts_key = keys.outbox_attempts()
        self.records = records
        self.metrics = metrics
        self.allow_private = allow_private
        self.client = httpx.AsyncClient(transport=transport, timeout=10.0)
        self.claim = Script.from_package("gateway", "outbox_claim")
        self.wake = asyncio.Event()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def enqueue(self, record: TaskRecord) -> None:
        if not record.webhook or not record.webhook.get("endpoint"):
            return
        try:
            await self.redis.zadd(self.key, {record.task_id: int(time.time() * 1000)})
        except RedisError as exc:
            self.metrics.store_error(StoreOp.OUTBOX)
            logs.event("webhook_enqueue_failed", task_id=record.task_id, error=str(exc))
            return
        self.wake.set()

    async def run_once(self, limit: int = 50) -> int:
        now = int(time.time() * 1000)
        claimed = await self.claim.on_redis(self.redis, (self.key,), (now, limit, 30_000))
        ids = [c.decode() if isinstance(c, bytes) else str(c) for c in claimed]
        await asyncio.gather(*(self._deliver(task_id) for task_id in ids))
        return len(ids)

    async def _deliver(self, task_id: str) -> None:
        record = await self.records.load(task_id)
        if record is None or not record.webhook:
            await self.redis.zrem(self.key, task_id)
            return
        endpoint = record.webhook["endpoint"]
        secret = record.webhook.get("secret", "")
        if not self.allow_private and await is_private_endpoint(endpoint):
            self.metrics.webhook_delivery("refused")
            logs.event("webhook_refused", task_id=task_id, reason="private address")
            await self.redis.zrem(self.key, task_id)
            return
        body = orjson.dumps({"timestamp": int(time.time()), "data": render(record)})
        headers = {
            "content-type": "application/json",
            "x-webhook-secret": secret,
            "x-mjgate-signature": signature(secret, body),
        }
        try:
            response = await self.client.post(endpoint, content=body, headers=headers)
            delivered = 200 <= response.status_code < 300
            why = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            delivered, why = False, type(exc).__name__
        if delivered:
            self.metrics.webhook_delivery("delivered")
            pipe = self.redis.pipeline()
            pipe.zrem(self.key, task_id)
            pipe.hdel(self.attempts_key, task_id)
            await pipe.execute()
            return
        attempt = int(await self.redis.hincrby(self.attempts_key, task_id, 1))
        if attempt >= MAX_ATTEMPTS:
            self.metrics.webhook_delivery("failed")
            logs.event("webhook_failed", task_id=task_id, attempts=attempt)
            pipe = self.redis.pipeline()
            pipe.zrem(self.key, task_id)
            pipe.hdel(self.attempts_key, task_id)
            await pipe.execute()
            return
        if attempt == 1:  # once per task: the retries that follow are counted, not logged
            logs.event("webhook_retrying", logging.WARNING, task_id=task_id, reason=why)
        self.metrics.webhook_delivery("retry")
        due = int(time.time() * 1000) + 1000 * 2 ** (attempt - 1)
        await self.redis.zadd(self.key, {task_id: due})
