"""With MJGATE_POOL_FILE_MODE=authoritative, the pool file is the truth: a change to the
accounts through the admin API lasts only until the next start, which puts the pool back to
the file. Every answer to such a change says so, in an `x-mjgate-warning` header (the CLI
prints it), so an operator learns it before a restart undoes the change.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import Settings

CHANGES = frozenset({"PUT", "PATCH", "DELETE", "POST"})
PATHS = ("/admin/v1/accounts", "/admin/v1/pool/apply")
HEADER = b"x-mjgate-warning"


def warning(settings: Settings) -> str | None:
    """The warning for account changes, or None when changes last (seed mode, no file)."""
    if settings.pool_file is None or settings.pool_file_mode != "authoritative":
        return None
    return (
        f"MJGATE_POOL_FILE_MODE=authoritative: the next start applies the pool file "
        f"{settings.pool_file.name} and undoes account changes it does not contain"
    )


class PoolFileWarning:
    """ASGI middleware adding the warning to answers of account-changing admin requests."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        text = warning(settings)
        self.value = None if text is None else text.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.value is None
            or scope["type"] != "http"
            or scope["method"] not in CHANGES
            or not scope["path"].startswith(PATHS)
        ):
            await self.app(scope, receive, send)
            return
        value = self.value

        async def send_with_warning(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, value)]}
            await send(message)

        await self.app(scope, receive, send_with_warning)
