"""Webhook deliveries: task webhooks and account notifications, off the request path.

`send` only queues (it never awaits), so the request path stays cheap. Deliveries that share a
key (a task id, or "notifications") go out in order, one at a time; different keys go out in
parallel on a few workers. A non-2xx answer or a transport error is retried after each of
`retry_delays` [L: GoAPI's retry count is unknown]. The workers and the HTTP client belong to
the app's lifespan: `start` and `stop`. Without a running lifespan deliveries stay queued.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

WORKERS = 8
LOG_SIZE = 1000
STOP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    url: str
    secret: str
    body: bytes


class WebhookSender:
    def __init__(
        self,
        *,
        retry_delays: tuple[float, ...],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry_delays = retry_delays
        self._timeout = timeout
        self._transport = transport
        self._pending: dict[str, deque[Delivery]] = {}
        self._ready: deque[str] = deque()
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def send(self, key: str, url: str, secret: str, body: bytes) -> None:
        queue = self._pending.get(key)
        if queue is None:
            self._pending[key] = deque([Delivery(key, url, secret, body)])
            self._ready.append(key)
            if self._wakeup is not None:
                self._wakeup.set()
        else:
            queue.append(Delivery(key, url, secret, body))
        if self._idle is not None:
            self._idle.clear()

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._pending.values())

    async def start(self) -> None:
        self._stopping = False
        self._ready = deque(self._pending)  # keys a previous stop left mid-way
        self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        if self._ready:
            self._wakeup.set()
        elif not self._pending:
            self._idle.set()
        self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def stop(self) -> None:
        """Stop the workers, even one whose cancellation was swallowed.

        A delivery through an in-process transport (`httpx.ASGITransport`) runs the receiving
        app inside the worker's task, and that app may absorb the cancellation; the flag and
        the wake-up make such a worker leave at its next turn, and the wait is bounded.
        """
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        for worker in self._workers:
            worker.cancel()
        if self._workers:
            await asyncio.wait(self._workers, timeout=STOP_SECONDS)
        self._workers = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def wait_idle(self) -> None:
        """Wait until every queued delivery was made or given up (tests bound it)."""
        if self._idle is None:
            raise RuntimeError("the webhook sender is not running (no lifespan)")
        await self._idle.wait()

    async def _work(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        while not self._stopping:
            if not self._ready:
                self._wakeup.clear()
                if not self._pending:
                    self._idle.set()
                await self._wakeup.wait()
                continue
            key = self._ready.popleft()
            queue = self._pending[key]
            while queue and not self._stopping:
                await self._deliver(queue[0])
                queue.popleft()
            if queue:  # stopped mid-way: the next start picks the rest up
                return
            del self._pending[key]
            if not self._pending:
                self._idle.set()

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._client is not None
        headers = {"content-type": "application/json", "x-webhook-secret": delivery.secret}
        outcome: dict[str, Any] = {"key": delivery.key, "url": delivery.url}
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await self._client.post(
                    delivery.url, content=delivery.body, headers=headers
                )
            except Exception as exc:  # any failure to deliver is one failed attempt
                outcome.update(attempts=attempt, status=None, error=type(exc).__name__)
                continue
            outcome.update(attempts=attempt, status=response.status_code, error="")
            if response.is_success:
                break
        outcome["ok"] = outcome.get("status") is not None and 200 <= outcome["status"] < 300
        self.log.append(outcome)
