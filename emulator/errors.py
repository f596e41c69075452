"""The emulator's exception tree. Each error is one GoAPI envelope `{code, data: null, message}`.

    EmulatorError (status, message)
    ├── BadRequest            400: a field, a parent task, a mode the account cannot run
    │   └── AccountRefused    400: account-level; message starts with a notification type
    ├── Unauthorized          401: missing or wrong key
    ├── NotFound              404: unknown task
    └── InjectedFault         any: a `status` fault from POST /_emulator/faults

GoAPI's exact error bodies are undocumented; the envelope and the 400 for account
refusals are [L]. Account refusals start with `mj_bot_banned:`, `mj_bot_captcha_required:`,
`mj_bot_subscription_expired:`, `mj_bot_no_fasthour:` or `no_active_mj_bot:` so a gateway can
classify them by prefix.
"""

from __future__ import annotations


class EmulatorError(Exception):
    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def headers(self) -> dict[str, str]:
        """Headers the error's answer carries besides the envelope."""
        return {}

    def envelope(self) -> dict[str, object]:
        return {"code": self.status, "data": None, "message": self.message}


class BadRequest(EmulatorError):
    status = 400


class AccountRefused(BadRequest):
    """The chosen account cannot take the task; `kind` is the notification type."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class Unauthorized(EmulatorError):
    status = 401


class NotFound(EmulatorError):
    status = 404


class InjectedFault(EmulatorError):
    def __init__(self, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
