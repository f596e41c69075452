"""`mjgate pool ...`: the pool as a whole over the admin API: its status, its pool file (apply,
export), its default pacing profile (`pool pacing`, `pool pacing set`, `pool pacing clear`:
the same options as `accounts add|set`), and where GoAPI sends account notifications."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli import pacing as cli_pacing
from gateway.cli.admin_api import EXIT_USAGE, CliError, call, console, count, fields_table
from routing.errors import PoolFileError
from routing.pacefile import KEYS as PACING_KEYS
from routing.poolfile import PoolFile, parse_pool_file

if TYPE_CHECKING:
    from gateway.cli.accounts import Actions, Command


def pool_status(args: argparse.Namespace) -> None:
    p = call(args, "GET", "/pool")
    if args.json:
        return
    rows: list[tuple[str, Any]] = [
        ("accounts", p["accounts"]), ("strategy", p["strategy"]),
        ("fast time usable", _usable(p)),
        ("fast time, all accounts", _all_fast(p)),
        ("relax-capable accounts", p["relax_capable"]), ("staged tasks", p["staged"]),
    ]  # fmt: skip
    for kind, slots in sorted(p["slots"].items()):
        rows.append((f"{kind} slots", f"{slots['in_use']} in use of {slots['capacity']}"))
    for group in ("by_plan", "by_state", "by_setting"):
        counts = ", ".join(f"{name} {count}" for name, count in sorted(p[group].items()))
        rows.append((group.replace("_", " "), counts or "-"))
    console().print(fields_table("Pool", rows))


def _usable(p: dict[str, Any]) -> str:
    """What routing can spend: accounts fast work can go to (pacing's hold said apart)."""
    held = f", {p['fast_hours_held']} h of it held by pacing now" if p["fast_seconds_held"] else ""
    return f"{p['fast_hours_usable']} h (active accounts with setting fast{held})"


def _all_fast(p: dict[str, Any]) -> str:
    idle = round((p["fast_seconds_left"] - p["fast_seconds_usable"]) / 3600, 3)
    if not idle:
        return f"{p['fast_hours_left']} h"
    return (f"{p['fast_hours_left']} h ({idle} h on accounts that take no fast work: paused,"
            " cooling, disabled, draining or setting relax)")  # fmt: skip


_MARKS = {"created": "+", "updated": "~", "removed": "-", "draining": "!", "unchanged": "="}


def pool_apply(args: argparse.Namespace) -> None:
    try:
        text = Path(args.file).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(EXIT_USAGE, f"cannot read {args.file}: {exc}") from exc
    try:
        pool = parse_pool_file(text)  # the server checks it too; this names the line sooner
    except PoolFileError as exc:
        raise CliError(EXIT_USAGE, f"{args.file}: {exc}") from exc
    params = {"dry_run": "true" if args.dry_run else "false"}
    data = call(args, "POST", "/pool/apply", params=params, content=text.encode())
    if args.json:
        return
    for change in data["changes"]:
        if change["action"] == "unchanged":
            continue
        what = "pool" if change["bot_id"] is None else f"account {change['bot_id']}"
        fields = f": {', '.join(change['fields'])}" if change["fields"] else ""
        note = _unpaced(pool, change)
        print(f"{_MARKS.get(change['action'], '?')} {what} {change['action']}{fields}{note}")
    counts = ", ".join(f"{n} {action}" for action, n in sorted(data["counts"].items()))
    verb = "dry run, nothing applied" if data["dry_run"] else "applied"
    print(f"{verb}: {counts or 'no accounts'}")


def _unpaced(pool: PoolFile, change: dict[str, Any]) -> str:
    """Says so when an update leaves the account unpaced: its pacing keys changed and the file
    gives it none (`pacing: null`, or a block whose keys are all commented out, which YAML
    reads as null: found from outside, the line listed the keys and nothing more)."""
    if change["action"] != "updated" or not set(change["fields"]) & set(PACING_KEYS):
        return ""
    spec = next((a for a in pool.accounts if a.bot_id == change["bot_id"]), None)
    if spec is None or spec.pacing is not None:
        return ""
    if spec.own_pacing is not None and spec.own_pacing.off:
        return " (now unpaced: `pacing:` is null, opting out of the pool's default)"
    return " (now unpaced)"


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
    print(
        f"  secret:  {data['secret']}  (if GoAPI sends it back in x-webhook-secret, it must"
        " match; the URL's token alone authenticates: keep the URL secret too)"
    )


def pool_pacing(args: argparse.Namespace) -> None:
    """`pool pacing`: the pool's default profile (or that there is none)."""
    _print_pacing(args, call(args, "GET", "/pool/pacing"))


def pool_pacing_set(args: argparse.Namespace) -> None:
    """The keys given over the current default (the built-in defaults when there is none);
    every account that inherits a key changes with it."""
    body = cli_pacing.body(args).get("pacing")
    if not body:
        raise CliError(EXIT_USAGE, "nothing to set: give at least one pacing option (see --help)")
    _print_pacing(args, call(args, "PATCH", "/pool/pacing", json=body))


def pool_pacing_clear(args: argparse.Namespace) -> None:
    _print_pacing(args, call(args, "DELETE", "/pool/pacing"))


def _print_pacing(args: argparse.Namespace, data: dict[str, Any]) -> None:
    if args.json:
        return
    profile = data["pacing"]
    if profile is None:
        print("the pool has no default pacing (accounts without their own are unpaced)")
    else:
        console().print(fields_table("Default pacing", cli_pacing.profile_rows(profile)))
    if "accounts_updated" in data:
        print(f"{count(len(data['accounts_updated']), 'account')} re-paced")


def add_pool_commands(pool: Actions, command: Command) -> None:
    """`mjgate pool ...`: `command(actions, name, run, help)` adds one with the common
    options (`pool pacing` has optional actions of its own: `set`, `clear`)."""
    command(pool, "status", pool_status, "totals per plan, state, setting and mode")
    p = command(pool, "apply", pool_apply, "make the pool match a pool file (prints the diff)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    p = command(pool, "export", pool_export, "the pool's definitions as a pool file")
    p.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")
    command(pool, "notifications", pool_notifications,
            "the URL and secret to give GoAPI for account notifications")  # fmt: skip
    p = command(pool, "pacing", pool_pacing, "the default pacing profile accounts inherit")
    actions = p.add_subparsers(dest="pacing_action", metavar="ACTION")
    p = command(actions, "set", pool_pacing_set,
                "change keys of the default (accounts inheriting follow)")  # fmt: skip
    cli_pacing.add_options(p, account=False)
    command(actions, "clear", pool_pacing_clear,
            "remove the default (accounts inheriting it: unpaced)")  # fmt: skip
