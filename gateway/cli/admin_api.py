"""The CLI's side of the admin API: one call with its exit codes, argument types, and the
tables people see (rich). The commands themselves are in `gateway.cli.commands`."""

from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from gateway.cli import pacing as cli_pacing

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Command = Callable[[argparse.Namespace], int]


def console() -> Console:
    # Piped output has no terminal width: rich's 80 columns would cut the tables' cells.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, soft_wrap=False, width=160 if wide else None)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- talking to the admin API -----------------------------------------------------------------


def segment(value: object) -> str:
    """`value` as one path segment: encoded, so an id like `../accounts/1` names nothing
    else (the HTTP client would resolve dot segments into another admin route)."""
    return quote(str(value), safe="")


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
) -> Any:
    """One admin API call; returns the answer's `data`, or raises CliError with the exit code.
    With --json the answer is printed as it came (errors too, on stdout)."""
    url = (args.url or os.environ.get("MJGATE_URL") or DEFAULT_URL).rstrip("/")
    token = args.token or os.environ.get("MJGATE_ADMIN_TOKEN", "")
    if not token:
        raise CliError(EXIT_USAGE, "no admin token: pass --token or set MJGATE_ADMIN_TOKEN")
    headers = {"authorization": f"Bearer {token}"}
    name = operator()
    if name:  # who is changing things, for the audit log (docs/operators.md)
        headers["x-mjgate-operator"] = name
    if content is not None:
        headers["content-type"] = "application/yaml"
    try:
        response = httpx.request(
            method, f"{url}/admin/v1{path}", params=params, json=json, content=content,
            headers=headers, timeout=args.timeout)  # fmt: skip
    except httpx.InvalidURL as exc:
        raise CliError(EXIT_USAGE, f"invalid --url {url!r}: {exc}") from exc
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise CliError(EXIT_UNREACHABLE, f"cannot reach mjgate at {url}: {reason}") from exc
    status = response.status_code
    try:
        body = response.json()
    except ValueError as exc:
        raise CliError(EXIT_REFUSED, f"{url} answered HTTP {status} without JSON") from exc
    if args.json:
        print(response.text)
    if not isinstance(body, dict):
        raise CliError(EXIT_REFUSED, f"{url} answered HTTP {status} with unexpected JSON")
    if response.is_error:
        error = body.get("error")
        kind = str(error.get("type", "")) if isinstance(error, dict) else ""
        code = EXIT_USAGE if kind == "invalid_pool_file" else EXIT_REFUSED
        message = body.get("message") or "refused"
        raise CliError(code, f"{message} ({kind or 'error'}, HTTP {status})")
    warning = response.headers.get("x-mjgate-warning")  # e.g. an authoritative pool file
    if warning:
        print(f"mjgate: warning: {warning}", file=sys.stderr)
    return body.get("data")


def operator() -> str:
    """The name the audit log records for this operator: MJGATE_OPERATOR, else the login
    name; empty when neither is known or it is not plain text (a header must be ASCII)."""
    name = os.environ.get("MJGATE_OPERATOR", "")
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # no login name (a container without a passwd entry)
            return ""
    name = name.strip()[:64]
    return name if name.isascii() and name.isprintable() else ""


def exit_code(run: Callable[[argparse.Namespace], None]) -> Command:
    def handler(args: argparse.Namespace) -> int:
        try:
            run(args)
        except CliError as exc:
            print(f"mjgate: {exc.message}", file=sys.stderr)
            return exc.code
        return EXIT_OK

    return handler


def csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")


def duration(value: str) -> float:
    match = _DURATION.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 90s, 30m, 2h, 1d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    seconds = float(match.group(1)) * unit
    if not math.isfinite(seconds):  # 400 digits: JSON has no such number
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite duration")
    return seconds


# -- rendering --------------------------------------------------------------------------------


def text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def state_text(account: dict[str, Any]) -> str:
    text = str(account["state"])
    if account.get("state_until"):
        text += f" until {account['state_until']}"
    return text


def fields_table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, text(value))
    return table


def history_table(entries: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("at", "what", "change", "reason"):
        table.add_column(column)
    for entry in entries:
        extra = {k: v for k, v in entry.items() if k not in ("at", "what", "from", "to", "reason")}
        change = f"{text(entry.get('from'))} -> {text(entry.get('to'))}"
        if "from" not in entry and "to" not in entry:
            change = ", ".join(f"{k}={v}" for k, v in extra.items()) or "-"
        table.add_row(
            text(entry.get("at")), text(entry.get("what")), change, text(entry.get("reason"))
        )
    return table


def show_account(account: dict[str, Any]) -> None:
    slots, busy = account["slots"], account["in_flight"]
    console().print(fields_table(f"Account {account['bot_id']}", [
        ("name", account["name"]), ("plan", account["plan"]),
        ("setting", f"{account['setting']} (declared {account['declared_setting']})"),
        ("state", state_text(account)), ("state reason", account["state_reason"]),
        ("fast time left", f"{account['fast_hours_left']} h "
                           f"({account['fast_seconds_left']} s; "
                           f"{account['fast_seconds_reserved']} s reserved)"),
        ("renews at", account["renews_at"]),
        ("fast slots", f"{busy['fast']} in flight of {slots['fast']}"),
        ("relax slots", f"{busy['relax']} in flight of {slots['relax']}"),
        ("weight", account["weight"]), ("tags", account["tags"]),
        *cli_pacing.rows(account),
    ]))  # fmt: skip
    if account.get("history"):
        console().print(history_table(account["history"], "History (newest first)"))
