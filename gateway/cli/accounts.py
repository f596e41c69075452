"""`mjgate accounts`: the pool's Midjourney accounts over the admin API (list, show, add, set,
state, remove), and their command-line options. Exit codes and common options: see
`gateway.cli.commands`."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.table import Table

from gateway.cli import pacing as cli_pacing
from gateway.cli.admin_api import (
    EXIT_USAGE,
    CliError,
    call,
    console,
    count,
    csv_list,
    duration,
    show_account,
    state_text,
    text,
)
from routing.model import AccountState, Plan, Setting
from routing.poolfile import FILE_STATES

if TYPE_CHECKING:  # argparse's sub-parsers are generic to the type checker only
    Actions = argparse._SubParsersAction[argparse.ArgumentParser]
    Command = Callable[
        [Actions, str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser
    ]

# -- the commands ---------------------------------------------------------------------------------


def accounts_list(args: argparse.Namespace) -> None:
    params = {k: v for k, v in (("state", args.state), ("tag", args.tag)) if v}
    data = call(args, "GET", "/accounts", params=params)
    if args.json:
        return
    table = Table(title=count(len(data["accounts"]), "account"), title_justify="left")
    for column in ("bot_id", "name", "plan", "setting", "state", "fast h left", "fast",
                   "relax", "weight", "tags", "available"):  # fmt: skip
        table.add_column(column)
    for a in data["accounts"]:
        table.add_row(
            str(a["bot_id"]), text(a["name"]), a["plan"], a["setting"], state_text(a),
            text(a["fast_hours_left"]), f"{a['in_flight']['fast']}/{a['slots']['fast']}",
            f"{a['in_flight']['relax']}/{a['slots']['relax']}", str(a["weight"]),
            text(a["tags"]), cli_pacing.available(a))  # fmt: skip
    console().print(table)


def accounts_show(args: argparse.Namespace) -> None:
    data = call(args, "GET", f"/accounts/{args.bot_id}")
    if not args.json:
        show_account(data)


def _definition(args: argparse.Namespace) -> dict[str, Any]:
    """The account options given on the command line, as admin API fields."""
    names = ("name", "plan", "setting", "fast_hours_left", "renews_at", "fast_slots",
             "relax_slots", "weight", "state")  # fmt: skip
    body = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    paced = cli_pacing.given_flags(args)
    if args.no_pacing and paced:  # the API's `pacing` is null or keys, never both
        raise CliError(EXIT_USAGE, f"--no-pacing (unpaced) contradicts {', '.join(paced)}:"
                       " give --no-pacing alone, or the pacing options without it")  # fmt: skip
    if args.tags is not None:
        body["tags"] = csv_list(args.tags)
    return body | cli_pacing.body(args)


def accounts_add(args: argparse.Namespace) -> None:
    data = call(args, "PUT", f"/accounts/{args.bot_id}", json=_definition(args))
    if not args.json:
        print(f"account {args.bot_id} {data['action']}")
        show_account(data["account"])


def accounts_set(args: argparse.Namespace) -> None:
    body = _definition(args)
    if not body:
        raise CliError(EXIT_USAGE, "nothing to change: give at least one option (see --help)")
    if args.reason:
        body["reason"] = args.reason
    data = call(args, "PATCH", f"/accounts/{args.bot_id}", json=body)
    if not args.json:
        print(f"account {args.bot_id} updated")
        show_account(data["account"])


def accounts_state(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"state": args.state, "reason": args.reason}
    if args.for_ is not None:
        body["until"] = time.time() + args.for_
    elif args.until is not None:
        body["until"] = args.until
    data = call(args, "POST", f"/accounts/{args.bot_id}/state", json=body)
    if not args.json:
        print(f"account {args.bot_id} is {state_text(data)}")


def accounts_remove(args: argparse.Namespace) -> None:
    params = {"force": "true"} if args.force else None
    call(args, "DELETE", f"/accounts/{args.bot_id}", params=params)
    if not args.json:
        print(f"account {args.bot_id} removed")


# -- the parser ---------------------------------------------------------------------------------


def _account_options(parser: argparse.ArgumentParser, *, adding: bool) -> None:
    parser.add_argument("--name")
    parser.add_argument(
        "--plan", choices=[p.value for p in Plan], help="default standard" if adding else None
    )
    parser.add_argument(
        "--setting",
        choices=[s.value for s in Setting],
        help="the account's own Midjourney setting (default fast)",
    )
    parser.add_argument(
        "--fast-hours",
        dest="fast_hours_left",
        type=cli_pacing.finite,
        metavar="H",
        help="fast time left, hours (as Midjourney's /info shows it)",
    )
    parser.add_argument(
        "--renews-at", metavar="WHEN", help="subscription renewal, ISO 8601 or unix seconds"
    )
    parser.add_argument("--fast-slots", type=int, metavar="N")
    parser.add_argument("--relax-slots", type=int, metavar="N")
    parser.add_argument("--weight", type=int, metavar="N")
    parser.add_argument("--tags", metavar="A,B", help="comma-separated; '' clears")
    parser.add_argument("--state", choices=[s.value for s in FILE_STATES])  # fmt: skip
    cli_pacing.add_options(parser)


def add_account_commands(accounts: Actions, command: Command) -> None:
    """`mjgate accounts ...`: `command(accounts, name, run, help)` adds one with the common
    options."""
    p = command(accounts, "list", accounts_list, "every account with its live figures")
    p.add_argument("--state", choices=[s.value for s in AccountState])
    p.add_argument("--tag")
    p = command(accounts, "show", accounts_show, "one account, with its history")
    p.add_argument("bot_id", type=int)
    p = command(accounts, "add", accounts_add, "create (or replace) an account's definition")
    p.add_argument("bot_id", type=int)
    _account_options(p, adding=True)
    p = command(accounts, "set", accounts_set, "change some fields (fast time, weight, ...)")
    p.add_argument("bot_id", type=int)
    _account_options(p, adding=False)
    p.add_argument("--reason", default="", help="kept in the account's history")
    p = command(accounts, "state", accounts_state, "put an account in a state")
    p.add_argument("bot_id", type=int)
    p.add_argument("state", choices=[s.value for s in AccountState])
    when = p.add_mutually_exclusive_group()
    when.add_argument("--until", metavar="WHEN", help="cooling's end, ISO 8601 or unix seconds")
    when.add_argument(
        "--for",
        dest="for_",
        type=duration,
        metavar="DURATION",
        help="cooling's length: 90s, 30m, 2h, 1d",
    )
    p.add_argument("--reason", default="", help="kept in the account's history")
    p = command(accounts, "remove", accounts_remove, "delete an account")
    p.add_argument("bot_id", type=int)
    p.add_argument(
        "--force", action="store_true", help="even with tasks in flight (they still settle)"
    )
