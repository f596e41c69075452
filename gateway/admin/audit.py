"""The audit log of operator changes: one log line per admin API write (docs/operators.md,
"The audit log").

Every route that writes is registered with `audited(action, handler)`: the handler gets a
`Change` to fill in (its target, its outcome, the fields it changed with their values before
and after), and the wrapper writes exactly one line once the handler has answered:

- `admin_change` (info): the write succeeded; `action`, the target (`bot_id` or `key_id`),
  `outcome`, `fields` (`{name: {"from", "to"}}`, only those that changed), the caller;
- `admin_refused`: the write was refused with a 4xx (debug: a bad body or an unknown account
  changes nothing), or the admin token was missing or wrong on any admin route (warning: the
  one shared token being guessed or misused);
- `admin_failed` (warning): a write answered 5xx (Redis unavailable, a bug): it may have been
  made in part, so it is on the record; a dry run's says `dry_run: true` (it wrote nothing,
  but a 5xx is worth knowing about).

The caller: the admin token is one shared bearer, so it names no one. Each line carries the
client address (`client`, as uvicorn sees it: behind a proxy, uvicorn's proxy headers rules)
and the name the caller gives in `x-mjgate-operator` (`operator`; the CLI sends
`MJGATE_OPERATOR` or the login name). That name is the caller's word, not an authentication.

Never a secret: a key's secret is only in its create answer, webhook secrets and tokens are
not in what handlers describe, and any field named like a secret is redacted anyway.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from gateway import logs
from gateway.routingerrors import status_of
from gateway.state import MjGate

OPERATOR_HEADER = "x-mjgate-operator"
OPERATOR_MAX = 64
REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"secret|token|password|api_key|authorization", re.IGNORECASE)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")  # control characters: no fake lines

Value = object  # a JSON value as a handler describes it (str, int, list, dict, None, ...)


@dataclass
class Change:
    """What one admin write did, filled in by its handler."""

    action: str
    target: dict[str, Value] = field(default_factory=dict)
    outcome: str = ""
    fields: dict[str, dict[str, Value]] = field(default_factory=dict)
    details: dict[str, Value] = field(default_factory=dict)
    wrote: bool = True  # False: nothing was written (a dry run): no line
    dry_run: bool = False  # a dry run: nothing is written, whatever happens

    def diff(
        self,
        before: Mapping[str, Value],
        after: Mapping[str, Value],
        names: Iterable[str] | None = None,
    ) -> None:
        """Add the fields (all, or `names`) whose value differs between before and after."""
        for name in (
            names if names is not None else [*before, *(n for n in after if n not in before)]
        ):
            was, now = before.get(name), after.get(name)
            if was != now:
                self.fields[name] = {"from": was, "to": now}


WriteHandler = Callable[[Request, MjGate, Change], Awaitable[Response]]
Handler = Callable[[Request, MjGate], Awaitable[Response]]


def audited(action: str, handler: WriteHandler) -> Handler:
    """`handler` as an admin handler that logs its one line (the module's docstring)."""

    async def run(request: Request, gate: MjGate) -> Response:
        change = Change(action)
        try:
            response = await handler(request, gate, change)
        except Exception as exc:
            status, kind = status_of(exc)
            # refused (4xx): nothing changed; failed (5xx): it may have been made in part
            name, level = ("admin_refused", logging.DEBUG) if status < 500 else (
                "admin_failed", logging.WARNING)  # fmt: skip
            dry = {"dry_run": True} if change.dry_run else {}
            logs.line(name, {"action": action, **redact(change.target), **dry, "status": status,
                             "error": kind, **caller(request)}, level)  # fmt: skip
            raise
        if change.wrote:
            logs.line("admin_change", {
                "action": action, **redact(change.target), "outcome": change.outcome or "done",
                "fields": redact(change.fields), **redact(change.details),
                "status": response.status_code, **caller(request),
            })  # fmt: skip
        return response

    run.__name__ = handler.__name__
    return run


def unauthorized(request: Request, kind: str) -> None:
    """An admin request without the admin token (any route, any method). The route, not the
    path: a path may hold what was pasted in place of a key id."""
    route = getattr(request.scope.get("route"), "path", None)
    where = request.scope.get("root_path", "") + route if route else "unmatched"
    logs.line("admin_refused", {"action": "authenticate", "method": request.method,
                                "route": where, "error": kind, **caller(request)},
              logging.WARNING)  # fmt: skip


def caller(request: Request) -> dict[str, Value]:
    """Who asked: the client address and the operator's own name for themself, if given."""
    named = _UNPRINTABLE.sub("", request.headers.get(OPERATOR_HEADER, "")).strip()
    return {
        "client": request.client.host if request.client else None,
        "operator": named[:OPERATOR_MAX] or None,
    }


def redact(value: Mapping[str, Value]) -> dict[str, Value]:
    """`value` with whatever sits under a secret's name replaced (at any depth)."""
    return {name: REDACTED if _SECRET_NAME.search(name) else _deep(item)
            for name, item in value.items()}  # fmt: skip


def _deep(value: Value) -> Value:
    if isinstance(value, Mapping):
        return redact({str(name): item for name, item in value.items()})
    if isinstance(value, list | tuple):
        return [_deep(item) for item in value]
    return value
