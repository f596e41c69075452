"""`mjgate keys`: client keys and their policies over the admin API (create, list, set,
revoke), and their command-line options. Exit codes and common options: see
`gateway.cli.commands`.

`keys set` takes `keys create`'s options (and `--name`); only those given change. `none`
clears a limit (`--jobs-per-day none`: no limit), `--modes all` allows every mode, `--tags ''`
and `--passthrough-models ''` clear those lists, `--no-allow-pinning` and
`--no-passthrough-foreign-ids` take a permission back.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from rich.table import Table

from gateway.cli.admin_api import (
    EXIT_REFUSED,
    EXIT_USAGE,
    CliError,
    call,
    console,
    count,
    csv_list,
    fields_table,
    segment,
    text,
)
from gateway.keys.tenancy import add_tenancy_options, tenancy_options
from routing.model import Mode

if TYPE_CHECKING:
    from gateway.cli.accounts import Actions, Command

# -- the commands ---------------------------------------------------------------------------------


def _policy(args: argparse.Namespace, *, changing: bool) -> dict[str, Any]:
    """The policy options given on the command line, as admin API fields."""
    given = vars(args)
    body = tenancy_options(args, changing=changing)
    for option, field in (("modes", "allowed_modes"), ("tags", "tags"),
                          ("passthrough_models", "passthrough_models")):  # fmt: skip
        value = given.get(option)
        if value is not None:
            all_modes = field == "allowed_modes" and value.strip().lower() == "all"
            body[field] = None if changing and all_modes else csv_list(value)
    for option, field in (("staged_limit", "staged_limit"), ("rate", "rate_per_minute")):
        if option in given and (changing or given[option] is not None):
            body[field] = given[option]
    foreign = given.get("passthrough_foreign_ids")
    if foreign is not None and (changing or foreign):
        body["passthrough_foreign_ids"] = foreign
    return body


def keys_create(args: argparse.Namespace) -> None:
    data = call(args, "POST", "/keys", json={"name": args.name, **_policy(args, changing=False)})
    if not args.json:
        print(f"key {data['id']} ({data['name']}) created")
        print(f"secret: {data['secret']}")
        print("The secret is shown only now: mjgate keeps only its hash.")


def keys_set(args: argparse.Namespace) -> None:
    body = _policy(args, changing=True)
    if args.name is not None:
        body["name"] = args.name
    if not body:
        raise CliError(EXIT_USAGE, "nothing to change: give at least one option (see --help)")
    data = call(args, "PATCH", f"/keys/{segment(args.key_id)}", json=body)
    if not args.json:
        print(f"key {data['id']} ({data['name']}) updated")
        show_key(data)


def show_key(key: dict[str, Any]) -> None:
    hours = {p: key[f"fast_seconds_per_{p}"] for p in ("day", "month")}
    console().print(fields_table(f"Key {key['id']}", [
        ("name", key["name"]), ("created", key["created_at"]),
        ("modes", key["allowed_modes"] or "all"), ("tags", key["tags"]),
        ("staged limit", key["staged_limit"]), ("rate/min", key["rate_per_minute"]),
        ("jobs per day", key["jobs_per_day"]), ("jobs per month", key["jobs_per_month"]),
        *((f"fast hours per {p}", None if s is None else round(s / 3600, 3))
          for p, s in hours.items()),
        ("max in flight", key["max_in_flight"]), ("timezone", key["timezone"]),
        ("weight", key["weight"]), ("pinning", "allowed" if key["allow_pinning"] else "no"),
        ("expires at", _when(key["expires_at"])), ("pass-through", _passthrough(key)),
    ]))  # fmt: skip


def keys_show(args: argparse.Namespace) -> None:
    data = call(argparse.Namespace(**{**vars(args), "json": False}), "GET", "/keys")  # one key
    key = next((k for k in data["keys"] if k["id"] == args.key_id), None)
    if key is None:
        raise CliError(EXIT_REFUSED, f"no managed key with id {args.key_id} (not_found, HTTP 404)")
    if args.json:  # the shape --json gives everywhere: the admin API's envelope
        print(json.dumps({"code": 200, "data": key, "message": "success"}, indent=2))
    else:
        show_key(key)


def _limits(key: dict[str, Any]) -> str:
    """A key's quotas and expiry in one cell ('-' for none)."""
    parts = [f"{key[f'jobs_per_{p}']} jobs/{p}" for p in ("day", "month")
             if key[f"jobs_per_{p}"] is not None]  # fmt: skip
    parts += [f"{round(key[f'fast_seconds_per_{p}'] / 3600, 2)} fast h/{p}"
              for p in ("day", "month") if key[f"fast_seconds_per_{p}"] is not None]  # fmt: skip
    if key["max_in_flight"] is not None:
        parts.append(f"{key['max_in_flight']} in flight")
    if key["expires_at"] is not None:
        parts.append(f"expires {_when(key['expires_at'])}")
    return "; ".join(parts) or "-"


def keys_list(args: argparse.Namespace) -> None:
    data = call(args, "GET", "/keys")
    if args.json:
        return
    table = Table(title=count(len(data["keys"]), "managed key"), title_justify="left")
    columns = ("id", "name", "modes", "tags", "staged limit", "rate/min", "limits", "pass-through",
               "created")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for key in data["keys"]:
        table.add_row(key["id"], key["name"], text(key["allowed_modes"] or "all"),
                      text(key["tags"]), text(key["staged_limit"]),
                      text(key["rate_per_minute"]), _limits(key), _passthrough(key),
                      _when(key["created_at"]))  # fmt: skip
    console().print(table)


def _passthrough(key: dict[str, Any]) -> str:
    models = ",".join(key.get("passthrough_models") or []) or "-"
    return models + (" +foreign ids" if key.get("passthrough_foreign_ids") else "")


def _when(value: str | float | None) -> str | None:
    if value is None or isinstance(value, str):  # none, or ISO 8601 already
        return value
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def keys_revoke(args: argparse.Namespace) -> None:
    call(args, "DELETE", f"/keys/{segment(args.key_id)}")
    if not args.json:
        print(f"key {args.key_id} revoked")


# -- the parser ---------------------------------------------------------------------------------


def _key_options(parser: argparse.ArgumentParser, *, changing: bool) -> None:
    add_tenancy_options(parser, changing=changing)
    modes = ", ".join(m.value for m in Mode)
    parser.add_argument("--modes", metavar="M,M", help=f"allowed modes, comma-separated ({modes})"
                        + ("; all: every mode" if changing else ""))  # fmt: skip
    parser.add_argument("--tags", metavar="A,B", help="only accounts with one of these tags"
                        + ("; '' clears" if changing else ""))  # fmt: skip
    for flag, dest, help_ in (("--staged-limit", "staged_limit", "tasks staged at once"),
                              ("--rate", "rate", "requests per minute")):  # fmt: skip
        parser.add_argument(
            flag,
            dest=dest,
            type=_limit if changing else int,
            metavar="N",
            help=help_ + ("; none: the default" if changing else ""),
            default=argparse.SUPPRESS if changing else None,
        )
    parser.add_argument(
        "--passthrough-models",
        metavar="M,M",
        help="models it may send through the pass-through, untouched ('*': any)"
        + ("; '' clears" if changing else ""),
    )
    parser.add_argument(
        "--passthrough-foreign-ids",
        action=argparse.BooleanOptionalAction if changing else "store_true",
        default=None if changing else False,
        help="may read and cancel task ids mjgate did not create for it",
    )


def _limit(value: str) -> int | None:
    return None if value.strip().lower() == "none" else int(value)


def add_key_commands(keys: Actions, command: Command) -> None:
    p = command(keys, "create", keys_create, "a new client key (the secret is shown once)")
    p.add_argument("name")
    _key_options(p, changing=False)
    command(keys, "list", keys_list, "the managed keys (never their secrets)")
    p = command(keys, "show", keys_show, "one key's whole policy (quotas, weight, expiry...)")
    p.add_argument("key_id")
    about = "change a key's policy, at once on every replica (its quota usage is kept)"
    p = command(keys, "set", keys_set, about)
    p.add_argument("key_id")
    p.add_argument("--name", help="who the key is for")
    _key_options(p, changing=True)
    p = command(keys, "revoke", keys_revoke, "revoke a key, at once on every replica")
    p.add_argument("key_id")
