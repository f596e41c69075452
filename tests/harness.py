"""An in-process mjgate + emulator pair for end-to-end tests.

The gateway talks to the emulator through httpx's ASGITransport and the emulator's webhooks
come back the same way, so a whole task lifecycle runs in one event loop against a real Redis.
Tests that need real sockets or several processes live in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.applications import Starlette

from emulator.app import create_app as create_emulator
from emulator.config import EmulatedAccountSpec, EmulatorConfig
from gateway.app import create_app
from gateway.settings import Settings
from gateway.webhooks.credentials import goapi_secret, goapi_token
from routing.accounts import AccountSpec
from routing.model import Plan
from tests.canary import CANARY_CLIENT_KEY, CANARY_GOAPI_KEY, check_text

CLIENT_KEY = CANARY_CLIENT_KEY
OTHER_KEY = "client-key-0002"
ADMIN_TOKEN = "admin-token-0001"


class LazyASGITransport(httpx.AsyncBaseTransport):
    """An ASGITransport whose app is set after both apps exist (they call each other)."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        transport = httpx.ASGITransport(app=self.app)
        return await transport.handle_async_request(request)


@dataclass
class Harness:
    client: httpx.AsyncClient  # to mjgate, with the client key
    emulator: httpx.AsyncClient  # to the emulator's control endpoints
    app: Starlette
    emulator_app: Starlette
    settings: Settings
    registry: CollectorRegistry
    hooks: list[httpx.Request]  # client webhook deliveries mjgate made
    faulty: FaultyTransport  # the upstream transport: set .faults to inject exact faults
    created: list[str] = field(default_factory=list)  # ids of every create answered 200

    @property
    def gate(self) -> Any:
        return self.app.state.mjgate

    async def create(
        self,
        task_type: str = "imagine",
        key: str = CLIENT_KEY,
        headers: dict[str, str] | None = None,
        **task_input: Any,
    ) -> httpx.Response:
        if task_type == "imagine":
            task_input.setdefault("prompt", "a lighthouse at night")
        body = {"model": "midjourney", "task_type": task_type, "input": task_input}
        return await self.client.post(
            "/api/v1/task", json=body, headers={"x-api-key": key, **(headers or {})}
        )

    async def get(self, task_id: str, key: str = CLIENT_KEY) -> httpx.Response:
        return await self.client.get(f"/api/v1/task/{task_id}", headers={"x-api-key": key})

    async def wait_status(
        self, task_id: str, *statuses: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            record = await self.gate.records.load(task_id)
            if record is not None and record.status in statuses:
                data: dict[str, Any] = (await self.get(task_id)).json()["data"]
                return data
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"task {task_id} is {record and record.status}, not {statuses}"
                )
            await asyncio.sleep(0.02)

    async def received(self) -> list[dict[str, Any]]:
        body = (await self.emulator.get("/_emulator/received")).json()
        result: list[dict[str, Any]] = body["received"]
        return result

    async def emulated_accounts(self) -> dict[int, dict[str, Any]]:
        body = (await self.emulator.get("/_emulator/accounts")).json()
        rows = body["accounts"] if isinstance(body, dict) else body
        return {int(row["bot_id"]): row for row in rows}

    async def assert_ran_as_routed(self, *task_ids: str, at_least: int = 1) -> int:
        """Every task mjgate sent upstream ran on the account and in the mode mjgate decided.

        Compares mjgate's records (`bot_id`, `mode`) with where the emulator says it ran each
        one (`effective_bot_id`, `effective_mode` in its received log): the one signal that the
        gateway's decision was honoured, not silently changed by the upstream (a fast task run
        relax because the account had no fast time left, say). Defaults to every task created
        through this harness; tasks never sent upstream (staged, refused) are skipped, and at
        least `at_least` must have been checked. Returns how many were.
        """
        rows = []
        for task_id in dict.fromkeys(task_ids or self.created):  # once each, in order
            record = await self.gate.records.load(task_id)
            assert record is not None, f"mjgate has no record of task {task_id}"
            rows.append(
                {
                    "task_id": record.task_id,
                    "bot_id": record.bot_id,
                    "mode": record.mode,
                    "upstream_id": record.upstream_id,
                }
            )
        checked = check_ran_as_routed(rows, await self.received())
        assert checked >= at_least, f"only {checked} task(s) reached the upstream"
        return checked


def check_ran_as_routed(
    records: Iterable[Mapping[str, Any]], received: Sequence[Mapping[str, Any]]
) -> int:
    """Match mjgate's records (`task_id`, `bot_id`, `mode`, `upstream_id`, as in the admin API's
    task view) with the emulator's received log; fails listing every task that ran elsewhere or
    otherwise than decided, or that the emulator created other than once. Returns the number of
    records checked (those with an upstream id)."""
    runs: dict[str, list[Mapping[str, Any]]] = {}
    for entry in received:
        if entry.get("task_id"):
            runs.setdefault(str(entry["task_id"]), []).append(entry)
    problems, checked = [], 0
    for record in records:
        upstream = record.get("upstream_id")
        if not upstream:
            continue
        checked += 1
        found = runs.get(str(upstream), [])
        if len(found) != 1:
            problems.append(f"{record['task_id']}: the emulator created it {len(found)} times")
            continue
        run = found[0]
        decided = (record["bot_id"], record["mode"])
        ran = (run["effective_bot_id"], run["effective_mode"])
        if ran != decided or run["bot_id"] != record["bot_id"]:
            problems.append(
                f"{record['task_id']}: mjgate decided bot {decided[0]} {decided[1]}, sent "
                f"bot_id={run['bot_id']} process_mode={run['process_mode']!r}, "
                f"the emulator ran it on bot {ran[0]} {ran[1]}"
            )
    assert not problems, "\n".join(problems)
    return checked


def admin_records(gateway_url: str, admin_token: str, task_ids: Iterable[str]) -> list[Any]:
    """mjgate's records of these tasks through its admin API (for tests of real processes)."""
    headers = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=30) as admin:
        views = []
        for task_id in task_ids:
            answer = admin.get(f"/admin/v1/tasks/{task_id}")
            assert answer.status_code == 200, answer.text
            views.append(answer.json()["data"])
        return views


DEMO = (
    AccountSpec(bot_id=1001, name="basic", plan=Plan.BASIC),
    AccountSpec(bot_id=1002, name="standard", plan=Plan.STANDARD),
    AccountSpec(bot_id=1003, name="pro", plan=Plan.PRO),
    AccountSpec(bot_id=1004, name="mega", plan=Plan.MEGA),
)


def emulated(specs: tuple[AccountSpec, ...]) -> tuple[EmulatedAccountSpec, ...]:
    return tuple(
        EmulatedAccountSpec(
            bot_id=s.bot_id,
            plan=s.plan.value,
            setting=s.setting.value,
            fast_seconds=s.fast_seconds_left,
            fast_slots=s.fast_slots,
            relax_slots=s.relax_slots,
            name=s.name,
        )
        for s in specs
    )


@contextlib.asynccontextmanager
async def harness(
    redis: Redis,
    prefix: str,
    *,
    accounts: tuple[AccountSpec, ...] = DEMO,
    emulator_config: EmulatorConfig | None = None,
    settings: Settings | None = None,
    clock: Callable[[], float] | None = None,
    webhooks: bool = True,
    notifications: bool = True,
) -> AsyncIterator[Harness]:
    """`webhooks=False`: no `MJGATE_PUBLIC_URL`, so no task webhooks from the emulator;
    `notifications=False`: the emulator posts no account notifications (bans, captchas,
    expiries are then learnt only from refused creates). `clock`: the gateway's and the
    emulator's (its received log is stamped with it)."""
    base = settings or Settings()
    settings = replace(
        base,
        redis_prefix=prefix,
        goapi_api_key=CANARY_GOAPI_KEY,
        goapi_base_url="http://localhost:8090",
        client_keys=(CLIENT_KEY, OTHER_KEY),
        admin_token=ADMIN_TOKEN,
        public_url="http://localhost:8080" if webhooks else None,
        reconcile_interval=min(base.reconcile_interval, 0.2),
        allow_private_webhooks=True,
    )
    to_gateway = LazyASGITransport()
    config = emulator_config or EmulatorConfig(pending_seconds=0.05, processing_seconds=0.1)
    config = replace(
        config,
        accounts=config.accounts or emulated(accounts),
        notifications_url=(
            f"http://localhost:8080/webhooks/goapi/notifications/"
            f"{goapi_token(settings, 'notifications')}"
            if notifications
            else None
        ),
        notifications_secret=goapi_secret(settings),
    )
    emulator_app = create_emulator(config, webhook_transport=to_gateway, clock=clock)
    registry = CollectorRegistry()
    faulty = FaultyTransport(httpx.ASGITransport(app=emulator_app))
    hooks: list[httpx.Request] = []

    def receive_hook(request: httpx.Request) -> httpx.Response:
        request.read()
        hooks.append(request)
        refused = request.url.path.endswith("/refuse")  # a client endpoint that fails
        return httpx.Response(500 if refused else 200, json={"ok": not refused})

    app = create_app(
        settings,
        redis=redis,
        upstream_transport=faulty,
        registry=registry,
        clock=clock,
        webhook_transport=httpx.MockTransport(receive_hook),
    )
    to_gateway.app = app
    async with emulator_app.router.lifespan_context(emulator_app), app.router.lifespan_context(app):
        for spec in accounts:
            await app.state.mjgate.catalog.apply_account(spec)
        for _ in range(500):  # the pool loader runs as a task: wait until ready
            if app.state.mjgate.pool_loaded:
                break
            await asyncio.sleep(0.01)

        webhook_secrets = (
            goapi_secret(settings),
            goapi_token(settings, "tasks"),
            goapi_token(settings, "notifications"),
        )

        async def no_secrets(response: httpx.Response) -> None:
            await response.aread()
            path = response.request.url.path
            check_text(
                f"the response to {path}",
                response.text + repr(response.headers),
                () if path == "/admin/v1/notifications" else webhook_secrets,
            )

        created: list[str] = []

        async def remember_created(response: httpx.Response) -> None:
            request = response.request
            create = request.method == "POST" and request.url.path == "/api/v1/task"
            if create and response.status_code == 200:
                await response.aread()
                created.append(response.json()["data"]["task_id"])

        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://localhost:8080",
                event_hooks={"response": [no_secrets, remember_created]},
            ) as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=emulator_app), base_url="http://localhost:8090"
            ) as emu,
        ):
            yield Harness(
                client, emu, app, emulator_app, settings, registry, hooks, faulty, created
            )
            check_text("/metrics", (await client.get("/metrics")).text)


class SentThenTimeout(Exception):
    """Fault marker: the create reaches the upstream, then its answer is lost (a read timeout
    after sending, the ambiguous case)."""


@dataclass(frozen=True)
class SentThen:
    """Fault: the create reaches the upstream and its answer comes back, with `then` run in
    between (Redis stopped at that moment, say)."""

    then: Callable[[], None]


class FaultyTransport(httpx.AsyncBaseTransport):
    """Delegates to the emulator, but the next creates fail with exactly the given faults
    (an exception to raise, or a response to return): the one place tests inject faults
    the emulator can't produce, such as a refused connection."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.faults: list[Exception | httpx.Response | SentThen] = []
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/task":
            self.creates += 1
            if self.faults:
                fault = self.faults.pop(0)
                if isinstance(fault, SentThen):
                    answer = await self.inner.handle_async_request(request)
                    fault.then()
                    return answer
                if isinstance(fault, SentThenTimeout):
                    await self.inner.handle_async_request(request)
                    raise httpx.ReadTimeout("answer lost after sending", request=request)
                if isinstance(fault, Exception):
                    raise fault
                return fault
        return await self.inner.handle_async_request(request)
