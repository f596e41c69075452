"""The operator commands of `mjgate`: `accounts`, `keys`, `tasks`, `pool`, over the admin API.

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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from gateway.cli import pacing as cli_pacing
from gateway.cli.admin_api import (
    DEFAULT_URL,
    EXIT_USAGE,
    CliError,
    call,
    console,
    count,
    csv_list,
    duration,
    exit_code,
    fields_table,
    history_table,
    show_account,
    state_text,
    text,
)
from gateway.keys.tenancy import add_tenancy_options, tenancy_options
from routing.errors import PoolFileError
from routing.model import AccountState, Mode, Plan, Setting
from routing.poolfile import FILE_STATES, parse_pool_file

# -- accounts ---------------------------------------------------------------------------------


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


# -- pool ---------------------------------------------------------------------------------------


def pool_status(args: argparse.Namespace) -> None:
    p = call(args, "GET", "/pool")
    if args.json:
        return
    rows: list[tuple[str, Any]] = [
        ("accounts", p["accounts"]), ("strategy", p["strategy"]),
        ("fast time left", f"{p['fast_hours_left']} h"),
        ("relax-capable accounts", p["relax_capable"]), ("staged tasks", p["staged"]),
    ]  # fmt: skip
    for kind, slots in sorted(p["slots"].items()):
        rows.append((f"{kind} slots", f"{slots['in_use']} in use of {slots['capacity']}"))
    for group in ("by_plan", "by_state", "by_setting"):
        counts = ", ".join(f"{name} {count}" for name, count in sorted(p[group].items()))
        rows.append((group.replace("_", " "), counts or "-"))
    console().print(fields_table("Pool", rows))


_MARKS = {"created": "+", "updated": "~", "removed": "-", "draining": "!", "unchanged": "="}


def pool_apply(args: argparse.Namespace) -> None:
    try:
        text = Path(args.file).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(EXIT_USAGE, f"cannot read {args.file}: {exc}") from exc
    try:
        parse_pool_file(text)  # the server checks it too; this names the line sooner
    except PoolFileError as exc:
        raise CliError(EXIT_USAGE, f"{args.file}: {exc}") from exc
    params = {"dry_run": "true" if args.dry_run else "false"}
    data = call(args, "POST", "/pool/apply", params=params, content=text.encode())
    if args.json:
        return
    for change in data["changes"]:
        if change["action"] == "unchanged":
            continue
        what = "strategy" if change["bot_id"] is None else f"account {change['bot_id']}"
        fields = f": {', '.join(change['fields'])}" if change["fields"] else ""
        print(f"{_MARKS.get(change['action'], '?')} {what} {change['action']}{fields}")
    counts = ", ".join(f"{n} {action}" for action, n in sorted(data["counts"].items()))
    verb = "dry run, nothing applied" if data["dry_run"] else "applied"
    print(f"{verb}: {counts or 'no accounts'}")


def pool_export(args: argparse.Namespace) -> None:
    data = call(args, "GET", "/pool/export")
    if args.output:
        try:
            Path(args.output).write_text(data["yaml"])
        except OSError as exc:
            raise CliError(EXIT_USAGE, f"cannot write {args.output}: {exc}") from exc
        if not args.json:
            print(f"pool written to {args.output}")
    elif not args.json:
        sys.stdout.write(data["yaml"])


def pool_notifications(args: argparse.Namespace) -> None:
    data = call(args, "GET", "/notifications")
    if args.json:
        return
    url = data["url"] or f"<MJGATE_PUBLIC_URL>{data['path']}  (MJGATE_PUBLIC_URL is not set)"
    print("In GoAPI's Host-Your-Account dashboard, send account notifications to:")
    print(f"  URL:     {url}")
    print(f"  secret:  {data['secret']}  (GoAPI sends it back in x-webhook-secret)")


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
        type=float,
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

    accounts = group("accounts", "the pool's Midjourney accounts")
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

    pool = group("pool", "the pool as a whole and its pool file")
    command(pool, "status", pool_status, "totals per plan, state, setting and mode")
    p = command(pool, "apply", pool_apply, "make the pool match a pool file (prints the diff)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    p = command(pool, "export", pool_export, "the pool's definitions as a pool file")
    p.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")
    command(pool, "notifications", pool_notifications,
            "the URL and secret to give GoAPI for account notifications")  # fmt: skip
