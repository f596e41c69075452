"""The app factory. The lifespan owns the webhook workers, their HTTP client and the ticker.

    app = create_app(EmulatorConfig.instant())
    app.state.emulator          # the Emulator, for in-process tests

In-process tests that want webhooks or the ticker run the lifespan themselves
(`async with app.router.lifespan_context(app): ...`); without it, state still advances on
every request (lazily, from the clock) and webhooks stay queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from emulator import api, control
from emulator.config import EmulatorConfig
from emulator.engine import Emulator
from emulator.errors import EmulatorError
from emulator.responses import on_emulator_error, on_http_error, on_unexpected
from emulator.webhooks import WebhookSender

# With an injected clock, time moves when a test says so: poll it often.
# With the real clock the ticker sleeps exactly until the next transition.
INJECTED_CLOCK_POLL_SECONDS = 0.02
IDLE_SLEEP_SECONDS = 3600.0
STOP_SECONDS = 5.0


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Callable[[], float] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    config = config or EmulatorConfig()
    sender = WebhookSender(
        retry_delays=config.webhook_retry_delays,
        timeout=config.webhook_timeout_seconds,
        transport=webhook_transport,
    )
    emulator = Emulator(config, clock=clock or time.time, sender=sender)
    max_sleep = IDLE_SLEEP_SECONDS if clock is None else INJECTED_CLOCK_POLL_SECONDS

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        closing = asyncio.Event()
        app.state.closing = closing
        await sender.start()
        ticker = asyncio.create_task(
            emulator.timeline.tick(emulator.advance, emulator.clock, max_sleep)
        )
        try:
            yield
        finally:
            closing.set()
            emulator.timeline.stop()
            ticker.cancel()
            await asyncio.wait([ticker], timeout=STOP_SECONDS)
            await sender.stop()

    app = Starlette(
        routes=[*api.routes(), *control.routes()],
        exception_handlers={
            EmulatorError: on_emulator_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app
