"""Errors raised by `routing` as the gateway answers them: one table of status, error.type and
details, and the messages and Retry-After of those a client can act on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from gateway.errors import GatewayError, envelope
from routing import errors as rerr

RoutingTranslation = tuple[int, str, Callable[[Any], dict[str, Any]]]

ROUTING_ERRORS: dict[type[rerr.RoutingError], RoutingTranslation] = {
    rerr.StoreError: (503, "store_unavailable", lambda e: {}),
    rerr.PoolEmptyError: (503, "pool_empty", lambda e: {}),
    rerr.NoRelaxCapableAccountError: (503, "no_relax_capable_account", lambda e: {}),
    rerr.ParentAccountUnavailableError: (
        409, "parent_account_unavailable", lambda e: {"bot_id": e.bot_id, "reason": e.reason}),
    rerr.StagedLimitError: (429, "staged_limit", lambda e: {"limit": e.limit}),
    rerr.QuotaExceededError: (
        429, "quota_exceeded", lambda e: {"quota": e.quota, "retry_after": e.retry_after}),
    rerr.PacedUnavailableError: (
        503, "paced_unavailable", lambda e: {"reason": e.reason, "retry_after": e.retry_after}),
    rerr.PinnedAccountUnavailableError: (
        409, "pinned_account_unavailable", lambda e: {"bot_id": e.bot_id, "reason": e.reason}),
    rerr.AccountNotFoundError: (404, "account_not_found", lambda e: {"bot_id": e.bot_id}),
    rerr.AccountBusyError: (
        409, "account_busy", lambda e: {"bot_id": e.bot_id, "in_flight": e.in_flight}),
    rerr.PoolFileError: (400, "invalid_pool_file", lambda e: {"line": e.line}),
}  # fmt: skip

_RETRY_AFTER = {
    "store_unavailable": "1",
    "staged_limit": "5",
    "no_relax_capable_account": "30",
    "pool_empty": "30",
}


def status_of(exc: BaseException) -> tuple[int, str]:
    """The status and error.type the handler table answers `exc` with."""
    if isinstance(exc, GatewayError):
        return exc.status, exc.type
    for cls in type(exc).__mro__:
        if cls in ROUTING_ERRORS:
            status, type_, _ = ROUTING_ERRORS[cls]
            return status, type_
    return 500, "internal_error"


def routing_error_response(exc: rerr.RoutingError) -> Response:
    for cls in type(exc).__mro__:
        if cls in ROUTING_ERRORS:
            status, type_, details = ROUTING_ERRORS[cls]
            message = {
                "store_unavailable": "mjgate's store (Redis) is unavailable; retry shortly",
                "no_relax_capable_account": "no active account can run relax jobs (basic-plan "
                "accounts have no relax mode; paused, cooling and disabled accounts take no "
                "work), and fast work falls back to relax when no active account has fast "
                "time left",
                "pool_empty": "the account pool is empty: no account is configured (or the "
                "store was reset); the operator must add accounts",
            }.get(type_, str(exc))
            if isinstance(exc, rerr.TaggedAccountsUnavailableError):
                message = str(exc)
            retry = _RETRY_AFTER.get(type_)
            if isinstance(exc, rerr.QuotaExceededError | rerr.PacedUnavailableError):
                retry = str(exc.retry_after)  # the quota's reset, pacing's first change
            headers = {"retry-after": retry} if retry else None
            return envelope(status, type_, message, headers, **details(exc))
    return envelope(500, "internal_error", "internal error")
