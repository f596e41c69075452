"""The gateway's exception tree and the envelope every error is answered with.

    GatewayError (status, error.type)
    ├── InvalidRequestError        400 invalid_request (names the field)
    ├── BodyTooLargeError          413 body_too_large
    ├── MissingKeyError            401 missing_api_key
    ├── InvalidKeyError            401 invalid_api_key
    ├── KeyExpiredError            401 key_expired
    ├── ForbiddenError             403 forbidden
    ├── NotFoundError              404 not_found
    ├── RateLimitedError           429 rate_limited (+ Retry-After)
    ├── TaskNotCancellableError    400 task_not_cancellable
    ├── ClientDisconnectedError    400 client_disconnected (the client left mid-body)
    ├── HeadersTooLargeError       431 headers_too_large
    ├── IdempotencyKeyReusedError  422 idempotency_key_reused (another request's key)
    ├── IdempotencyInProgressError 409 idempotency_in_progress (its first request still runs)
    ├── ReservationExpiredError    503 reservation_expired (not sent: its lease ran out first)
    └── UpstreamError
        ├── UpstreamUnavailableError   502 upstream_unavailable, raised as its subclass:
        │   ├── UpstreamNotSentError   never reached the upstream: retried elsewhere first
        │   ├── UpstreamFailedError    answered a 5xx: not retried (+ Retry-After)
        │   └── UpstreamPausedError    503: a 503 said GoAPI is down for a while (+ Retry-After)
        ├── UpstreamTimeoutError       504 upstream_timeout (sent; outcome unknown)
        ├── UpstreamInvalidAnswerError 502 upstream_invalid_answer (2xx without a task)
        ├── UpstreamRateLimitedError   429 upstream_rate_limited (+ Retry-After)
        ├── NoAccountAcceptedError     503 no_account_accepted (+ Retry-After)
        └── UpstreamRejectedError      upstream_rejected with the upstream's own 4xx status
                                       (400 for a 5xx about the request)

Errors raised by `routing` (StoreError, NoRelaxCapableAccountError, ...) are translated by
`gateway.routingerrors`' table. A pass-through answer is relayed, not raised:
`gateway.api.passthrough` types its errors by status (`upstream_unavailable` for a 5xx there).
Exceptions that never become an HTTP answer stay outside the tree: `SettingsError` (a
ValueError: bad environment, the process does not start), `CliError` (an operator command
failed), `EmbeddedRedisError` and `SandboxError` (the local Redis or sandbox could not start).
Every answer is GoAPI's envelope plus `error`: `{"code": <status>, "data": null, "message":
"...", "error": {"type": "...", ...}}`.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class GatewayError(Exception):
    status = 500
    type = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class InvalidRequestError(GatewayError):
    status, type = 400, "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class BodyTooLargeError(GatewayError):
    status, type = 413, "body_too_large"


class MissingKeyError(GatewayError):
    status, type = 401, "missing_api_key"


class InvalidKeyError(GatewayError):
    status, type = 401, "invalid_api_key"


class KeyExpiredError(GatewayError):
    status, type = 401, "key_expired"


class ForbiddenError(GatewayError):
    status, type = 403, "forbidden"


class NotFoundError(GatewayError):
    status, type = 404, "not_found"


class RateLimitedError(GatewayError):
    status, type = 429, "rate_limited"


class TaskNotCancellableError(GatewayError):
    status, type = 400, "task_not_cancellable"


class ClientDisconnectedError(GatewayError):
    """The client went away before its body was read: nobody is left to answer."""

    status, type = 400, "client_disconnected"


class HeadersTooLargeError(GatewayError):
    status, type = 431, "headers_too_large"


class IdempotencyKeyReusedError(GatewayError):
    status, type = 422, "idempotency_key_reused"


class IdempotencyInProgressError(GatewayError):
    status, type = 409, "idempotency_in_progress"


class ReservationExpiredError(GatewayError):
    """A reserved task held so long (a stalled process, a Redis outage) that its lease ran
    out and a reconciler may be ending it: it is not sent (it would run on a slot that may
    be given to another task). Nothing runs; the client may retry."""

    status, type = 503, "reservation_expired"


class UpstreamError(GatewayError):
    status, type = 502, "upstream_error"


class UpstreamUnavailableError(UpstreamError):
    status, type = 502, "upstream_unavailable"


class UpstreamNotSentError(UpstreamUnavailableError):
    """The request never reached the upstream: safe to retry elsewhere."""


class UpstreamFailedError(UpstreamUnavailableError):
    """The upstream answered a create with a 5xx (not a gateway timeout): it failed to create
    it. Released at once, never retried on another account (gateway.tasks.refusals)."""

    def __init__(self, upstream_status: int, message: str, retry_after: int) -> None:
        wait = max(1, retry_after)
        said = f": {message[:200]}" if message else ""
        super().__init__(
            f"the upstream (GoAPI) failed to create the task (HTTP {upstream_status}{said}); "
            f"nothing is held for it and it was not sent again; retry in {wait} s",
            headers={"retry-after": str(wait)},
            upstream_status=upstream_status,
            retry_after=wait,
        )


class UpstreamPausedError(UpstreamUnavailableError):
    """A create while GoAPI is unavailable: a 503 said for how long (gateway.tasks.backoff).
    Refused before anything is reserved; sent nowhere."""

    status = 503

    def __init__(self, retry_after: int) -> None:
        wait = max(1, retry_after)
        super().__init__(
            f"the upstream (GoAPI) said it is unavailable; nothing was sent or held for this "
            f"task; retry in {wait} s",
            headers={"retry-after": str(wait)},
            retry_after=wait,
        )


class UpstreamTimeoutError(UpstreamError):
    status, type = 504, "upstream_timeout"


class UpstreamInvalidAnswerError(UpstreamError):
    """A 2xx create answer without a task: it may exist upstream, so it is never re-sent."""

    status, type = 502, "upstream_invalid_answer"

    def __init__(self, upstream_status: int) -> None:
        super().__init__(
            "the upstream accepted the request but its answer holds no task; it may or may not "
            "have been created, and mjgate will not send it again",
            upstream_status=upstream_status,
        )


class UpstreamRateLimitedError(UpstreamError):
    """The upstream (GoAPI) rate-limits mjgate's key: every account waits, none is blamed."""

    status, type = 429, "upstream_rate_limited"

    def __init__(self, retry_after: int) -> None:
        wait = max(1, retry_after)
        super().__init__(
            f"the upstream (GoAPI) asked mjgate to slow down; retry in {wait} s",
            headers={"retry-after": str(wait)},
            retry_after=wait,
        )


class NoAccountAcceptedError(UpstreamError):
    """Every account tried was refused by the upstream for that account's own reasons."""

    status, type = 503, "no_account_accepted"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"the upstream refused the task on {attempts} accounts for reasons of those "
            "accounts (they were taken out of rotation); retry shortly",
            headers={"retry-after": "5"},
            attempts=attempts,
        )


class UpstreamRejectedError(UpstreamError):
    """The upstream refused the request itself: its status and message are passed on."""

    type = "upstream_rejected"

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status


# A create that failed with one of these ran nothing upstream and holds nothing: a retry with
# the same Idempotency-Key is a new attempt (a timeout or an unclear answer keeps the key: the
# task may exist).
NOTHING_RAN = (
    UpstreamUnavailableError,
    UpstreamRateLimitedError,
    NoAccountAcceptedError,
    UpstreamRejectedError,
    ReservationExpiredError,
)


def envelope(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None, **details: Any
) -> Response:
    body = {"code": status, "data": None, "message": message, "error": {"type": type_, **details}}
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def gateway_error_response(exc: GatewayError) -> Response:
    return envelope(exc.status, exc.type, exc.message, exc.headers, **exc.details)
