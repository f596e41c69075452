"""`python -m emulator` / `mjgate emulator`: serve the emulator with uvicorn.

python -m emulator --accounts demo --port 8090
python -m emulator --instant --api-key secret
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from emulator.app import create_app
from emulator.config import ConfigError, EmulatorConfig, load_accounts

GRACEFUL_SHUTDOWN_SECONDS = 2  # hung creates (a fault) must not hold the process forever


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emulator",
        description="A GoAPI-compatible Midjourney upstream that runs offline.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (8090)")
    p.add_argument(
        "--instant", action="store_true", help="complete tasks at once (pending = processing = 0)"
    )
    p.add_argument("--pending-seconds", type=float, default=2.0, help="time pending (2)")
    p.add_argument("--processing-seconds", type=float, default=4.0, help="time processing (4)")
    p.add_argument("--progress-steps", type=int, default=3, help="progress updates (3)")
    p.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    p.add_argument(
        "--accounts",
        default=None,
        metavar="demo|FILE.json",
        help="HYA accounts: 'demo' (one per plan, bot_ids 1001-1004) or a JSON file; "
        "default: none (GoAPI's public pool)",
    )
    p.add_argument("--notifications-url", default=None, help="where account notifications go")
    p.add_argument("--notifications-secret", default="", help="their x-webhook-secret")
    p.add_argument("--log-level", default="warning", help="uvicorn's log level (warning)")
    return p


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    accounts = load_accounts(args.accounts) if args.accounts else ()
    return EmulatorConfig(
        api_key=args.api_key,
        pending_seconds=0.0 if args.instant else args.pending_seconds,
        processing_seconds=0.0 if args.instant else args.processing_seconds,
        progress_steps=args.progress_steps,
        accounts=accounts,
        notifications_url=args.notifications_url,
        notifications_secret=args.notifications_secret,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    speed = (
        "instant"
        if config.is_instant
        else (f"{config.pending_seconds:g}s pending + {config.processing_seconds:g}s processing")
    )
    pool = ", ".join(f"{a.bot_id} {a.plan}" for a in config.accounts) or "public pool"
    print(
        f"GoAPI emulator on http://{args.host}:{args.port} ({speed}; accounts: {pool})",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0
