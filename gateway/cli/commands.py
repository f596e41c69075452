"""The operator commands of `mjgate`: `accounts` (`gateway.cli.accounts`), `keys`, `tasks`, `pool`
(`gateway.cli.pool`), over the admin API.

Each command is one or two admin API calls. The server is `--url` or MJGATE_URL (default
http://127.0.0.1:8080), the token `--token` or MJGATE_ADMIN_TOKEN. People get tables; `--json`
prints the API's answer as it came, for scripts. Exit codes:

    0  done
    1  the server refused (4xx/5xx): its message is printed
    2  usage, a missing token, or a file problem (unreadable or invalid pool file)
    3  the server could not be reached
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from rich.table import Table

from gateway.cli.accounts import add_account_commands
from gateway.cli.admin_api import (
    DEFAULT_URL,
    call,
    console,
    count,
    csv_list,
    exit_code,
    fields_table,
    history_table,
    text,
)
from gateway.cli.pool import add_pool_commands
from gateway.keys.tenancy import add_tenancy_options, tenancy_options
from routing.model import Mode

# -- keys, tasks --------------------------------------------------------------------------------


def keys_create(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"name": args.name, **tenancy_options(args)}
    if args.modes is not None:
        body["allowed_modes"] = csv_list(args.modes)
    if args.tags is not None:
        body["tags"] = csv_list(args.tags)
    if args.staged_limit is not None:
        body["staged_limit"] = args.staged_limit
    if args.rate is not None:
        body["rate_per_minute"] = args.rate
    if args.passthrough_models is not None:
        body["passthrough_models"] = csv_list(args.passthrough_models)
    if args.passthrough_foreign_ids:
        body["passthrough_foreign_ids"] = True
    data = call(args, "POST", "/keys", json=body)
    if not args.json:
        print(f"key {data['id']} ({data['name']}) created")
        print(f"secret: {data['secret']}")
        print("The secret is shown only now: mjgate keeps only its hash.")


def keys_list(args: argparse.Namespace) -> None:
    data = call(args, "GET", "/keys")
    if args.json:
        return
    table = Table(title=count(len(data["keys"]), "managed key"), title_justify="left")
    columns = ("id", "name", "modes", "tags", "staged limit", "rate/min", "pass-through", "created")
    for column in columns:
        table.add_column(column)
    for key in data["keys"]:
        table.add_row(key["id"], key["name"], text(key["allowed_modes"] or "all"),
                      text(key["tags"]), text(key["staged_limit"]),
                      text(key["rate_per_minute"]), _passthrough(key),
                      _created(key["created_at"]))  # fmt: skip
    console().print(table)


def _passthrough(key: dict[str, Any]) -> str:
    models = ",".join(key.get("passthrough_models") or []) or "-"
    return models + (" +foreign ids" if key.get("passthrough_foreign_ids") else "")


def _created(value: str | float) -> str:
    if isinstance(value, str):  # ISO 8601 already
        return value
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def keys_revoke(args: argparse.Namespace) -> None:
    call(args, "DELETE", f"/keys/{args.key_id}")
    if not args.json:
        print(f"key {args.key_id} revoked")


def tasks_show(args: argparse.Namespace) -> None:
    t = call(args, "GET", f"/tasks/{args.task_id}")
    if args.json:
        return
    error = t.get("error") or {}
    console().print(fields_table(f"Task {t['task_id']}", [
        ("type", t["task_type"]), ("status", t["status"]), ("client", t["client_id"]),
        ("account", t["bot_id"]), ("requested mode", t["requested_mode"]),
        ("mode", t["mode"]), ("decision", t["decision"]), ("upstream id", t["upstream_id"]),
        ("parent", t["parent_id"]), ("created", t["created_at"]), ("updated", t["updated_at"]),
        ("error", f"{error.get('type')}: {error.get('message')}" if error else None),
    ]))  # fmt: skip
    if t.get("history"):
        console().print(history_table(t["history"], "History"))


# -- the parser ---------------------------------------------------------------------------------


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"mjgate's URL (MJGATE_URL; default {DEFAULT_URL})")
    common.add_argument("--token", help="admin token (MJGATE_ADMIN_TOKEN)")
    common.add_argument("--json", action="store_true", help="print the API's JSON answer")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    def group(name: str, help_: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        parser = subparsers.add_parser(name, help=help_, description=help_)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(actions: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                run: Callable[[argparse.Namespace], None], help_: str
                ) -> argparse.ArgumentParser:  # fmt: skip
        parser = actions.add_parser(name, parents=[common], help=help_, description=help_)
        parser.set_defaults(handler=exit_code(run))
        return parser

    add_account_commands(group("accounts", "the pool's Midjourney accounts"), command)

    keys = group("keys", "client keys and their policies")
    p = command(keys, "create", keys_create, "a new client key (the secret is shown once)")
    p.add_argument("name")
    add_tenancy_options(p)
    p.add_argument(
        "--modes",
        metavar="M,M",
        help=f"allowed modes, comma-separated ({', '.join(m.value for m in Mode)})",
    )
    p.add_argument("--tags", metavar="A,B", help="only accounts with one of these tags")
    p.add_argument("--staged-limit", type=int, metavar="N")
    p.add_argument("--rate", type=int, metavar="N", help="requests per minute")
    p.add_argument(
        "--passthrough-models",
        metavar="M,M",
        help="models it may send through the pass-through, untouched ('*': any)",
    )
    p.add_argument(
        "--passthrough-foreign-ids",
        action="store_true",
        help="may read and cancel task ids mjgate did not create for it",
    )
    command(keys, "list", keys_list, "the managed keys (never their secrets)")
    p = command(keys, "revoke", keys_revoke, "revoke a key, at once on every replica")
    p.add_argument("key_id")

    tasks = group("tasks", "tasks mjgate routed")
    p = command(tasks, "show", tasks_show, "a task with its routing decision and history")
    p.add_argument("task_id")

    add_pool_commands(group("pool", "the pool as a whole and its pool file"), command)
