"""What the HTTP parts send, how hard, and how they read mjgate's metrics.

mjgate gets a client's imagine; the emulator (directly or through the reference proxy) gets
the same imagine as mjgate sends it upstream: with `bot_id` and `service_mode: private`, so
the upstream does the same work on both paths.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import httpx
import orjson

from bench import loadgen
from bench.lab import CLIENT_KEY, FIRST_BOT_ID, GOAPI_KEY

PROMPT = "a lighthouse on a cliff at dawn, volumetric light, 35mm --ar 16:9"
GATEWAY_BODY = orjson.dumps(
    {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": PROMPT, "process_mode": "fast"},
    }
)
UPSTREAM_BODY = orjson.dumps(
    {
        "model": "midjourney",
        "task_type": "imagine",
        "input": {"prompt": PROMPT, "process_mode": "fast", "bot_id": FIRST_BOT_ID},
        "config": {"service_mode": "private"},
    }
)
GATEWAY_HEADERS = {"x-api-key": CLIENT_KEY}
UPSTREAM_HEADERS = {"x-api-key": GOAPI_KEY}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: where to send, what, with which key."""

    url: str
    body: bytes
    headers: dict[str, str]

    @classmethod
    def gateway(cls, url: str) -> Side:
        return cls(url, GATEWAY_BODY, GATEWAY_HEADERS)

    @classmethod
    def upstream(cls, url: str) -> Side:
        return cls(url, UPSTREAM_BODY, UPSTREAM_HEADERS)

    def create_ids(self, count: int) -> list[str]:
        """Create `count` tasks; their ids as this side's clients see them."""
        tasks = asyncio.run(
            loadgen.create_tasks(f"{self.url}/api/v1/task", self.body, self.headers, count)
        )
        return [str(task["task_id"]) for task in tasks]


@dataclass(frozen=True)
class HttpPlan:
    """How long and how hard the HTTP parts run; `quick()` is the smoke run."""

    connections: int = 32
    threads: int = 1
    run_seconds: float = 6.0
    rounds: int = 2  # ABBA: reference, mjgate, mjgate, reference
    warmup_seconds: float = 2.0
    rate: float = 200.0
    latency_seconds: float = 10.0
    poll_tasks: int = 256
    pollers: int = 50
    poll_seconds: float = 20.0

    @classmethod
    def quick(cls) -> HttpPlan:
        return cls(
            run_seconds=2.0,
            rounds=1,
            warmup_seconds=1.0,
            latency_seconds=3.0,
            poll_tasks=64,
            pollers=10,
            poll_seconds=6.0,
        )


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus text exposition's samples of `name` matching `labels`."""
    total = 0.0
    pattern = rf"^{re.escape(name)}\{{([^}}]*)\}} ([0-9.eE+-]+)$"
    for match in re.finditer(pattern, text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=10).text
