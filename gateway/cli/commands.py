"""The operator commands of `mjgate`: `accounts` (`gateway.cli.accounts`), `keys`
(`gateway.cli.keys`), `tasks`, `pool` (`gateway.cli.pool`), over the admin API.

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
from collections.abc import Callable

from gateway.cli.accounts import add_account_commands
from gateway.cli.admin_api import (
    DEFAULT_URL,
    call,
    console,
    exit_code,
    fields_table,
    history_table,
    segment,
)
from gateway.cli.keys import add_key_commands
from gateway.cli.pacing import finite
from gateway.cli.pool import add_pool_commands

# -- tasks --------------------------------------------------------------------------------------


def tasks_show(args: argparse.Namespace) -> None:
    t = call(args, "GET", f"/tasks/{segment(args.task_id)}")
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
    common.add_argument("--timeout", type=finite, default=10.0, help="seconds (default 10)")

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

    add_key_commands(group("keys", "client keys and their policies"), command)

    tasks = group("tasks", "tasks mjgate routed")
    p = command(tasks, "show", tasks_show, "a task with its routing decision and history")
    p.add_argument("task_id")

    add_pool_commands(group("pool", "the pool as a whole and its pool file"), command)
