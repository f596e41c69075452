"""Client webhooks: mjgate delivers `{"timestamp", "data"}` to the client's own endpoint.

As GoAPI would, with the client's `x-webhook-secret`, plus `x-mjgate-signature:
sha256=<hex HMAC of the body keyed by that secret>`. Deliveries are persisted in Redis (an
outbox sorted set: one entry per task, due time as score) so a replica that dies loses nothing;
every replica's loop claims due entries atomically and retries with exponential backoff (1 s,
2 s, 4 s ... up to 10 attempts). The body is the task's latest state at delivery time, so a
retried delivery never sends stale news. Endpoints resolving to private, loopback or
link-local addresses are refused unless MJGATE_ALLOW_PRIVATE_WEBHOOKS is on (the sandbox
turns it on).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from importlib import resources
from urllib.parse import urlparse

import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import logs
from gateway.metrics import Metrics
from gateway.records import RecordStore, TaskRecord
from gateway.taskview import render
from routing.keys import Keys

MAX_ATTEMPTS = 10


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def is_private_endpoint(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except socket.gaierror:
        return True  # unresolvable: refuse rather than guess
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return True
    return False


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
        self.key = f"{keys.base}outbox"
        self.attempts_key = f"{keys.base}outbox:attempts"
        self.records = records
        self.metrics = metrics
        self.allow_private = allow_private
        self.client = httpx.AsyncClient(transport=transport, timeout=10.0)
        self.claim = redis.register_script(
            resources.files("gateway").joinpath("lua/outbox_claim.lua").read_text()
        )
        self.wake = asyncio.Event()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def enqueue(self, record: TaskRecord) -> None:
        if not record.webhook or not record.webhook.get("endpoint"):
            return
        try:
            await self.redis.zadd(self.key, {record.task_id: int(time.time() * 1000)})
        except RedisError as exc:
            self.metrics.store_error("outbox")
            logs.event("webhook_enqueue_failed", task_id=record.task_id, error=str(exc))
            return
        self.wake.set()

    async def run_once(self, limit: int = 50) -> int:
        now = int(time.time() * 1000)
        claimed = await self.claim(keys=[self.key], args=[now, limit, 30_000])
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
        except httpx.HTTPError:
            delivered = False
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
        self.metrics.webhook_delivery("retry")
        due = int(time.time() * 1000) + 1000 * 2 ** (attempt - 1)
        await self.redis.zadd(self.key, {task_id: due})
