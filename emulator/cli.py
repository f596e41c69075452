"""`python -m emulator` / `mjgate emulator`: serve the emulator with uvicorn.

python -m emulator --accounts demo --port 8090
python -m emulator --instant --api-key secret
python -m emulator --task-seconds 3 --spread 0.2 --seed 1    # the scheduling benchmark's pace
python -m emulator --realistic --time-scale 0.05             # GoAPI-like times, 20x faster
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from emulator.app import create_app
from emulator.config import ConfigError, EmulatorConfig, load_accounts
from emulator.durations import spread_of

GRACEFUL_SHUTDOWN_SECONDS = 2  # hung creates (a fault) must not hold the process forever


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="emulator",
        description="A GoAPI-compatible Midjourney upstream that runs offline.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (8090)")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument(
        "--instant", action="store_true", help="complete tasks at once (pending = processing = 0)"
    )
    speed.add_argument(
        "--task-seconds",
        type=float,
        default=None,
        metavar="T",
        help="every task holds its slot T seconds, whatever its type and mode "
        "(the median with --spread)",
    )
    speed.add_argument(
        "--realistic",
        action="store_true",
        help="GoAPI-like times per task type and mode (fast imagine 45 s, relax 120 s, ...), "
        "spread 0.25 unless --spread says otherwise",
    )
    p.add_argument("--pending-seconds", type=float, default=2.0, help="time pending (2)")
    p.add_argument("--processing-seconds", type=float, default=4.0, help="time processing (4)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every duration by F (1; 0.05 turns a 60 s task into 3 s)",
    )
    p.add_argument(
        "--spread",
        type=float,
        default=None,
        metavar="S",
        help="spread each task's duration around its median: x e^(S z), z standard normal "
        "bounded to +-3 (0: exact; 0.25 with --realistic)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the duration draws (default: random)"
    )
    p.add_argument("--progress-steps", type=int, default=3, help="progress updates (3)")
    p.add_argument("--api-key", default=None, help="the only key accepted (default: any)")
    p.add_argument(
        "--accounts",
        default=None,
        metavar="demo|FILE.json",
        help="HYA accounts: 'demo' (one per plan, bot_ids 1001-1004) or a JSON file; "
        "default: none (GoAPI's public pool)",
    )
    p.add_argument(
        "--notifications-url",
        default=os.environ.get("EMULATOR_NOTIFICATIONS_URL"),
        help="where account notifications go (default: $EMULATOR_NOTIFICATIONS_URL)",
    )
    p.add_argument(
        "--notifications-secret",
        default=os.environ.get("EMULATOR_NOTIFICATIONS_SECRET", ""),
        help="their x-webhook-secret (default: $EMULATOR_NOTIFICATIONS_SECRET; the environment "
        "keeps it off the command line other users' `ps` shows)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn's log level (warning)")
    return p


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    accounts = load_accounts(args.accounts) if args.accounts else ()
    return EmulatorConfig(
        api_key=args.api_key,
        pending_seconds=0.0 if args.instant else args.pending_seconds,
        processing_seconds=0.0 if args.instant else args.processing_seconds,
        progress_steps=args.progress_steps,
        task_seconds=args.task_seconds,
        realistic_durations=args.realistic,
        time_scale=args.time_scale,
        duration_spread=args.spread,
        duration_seed=args.seed,
        accounts=accounts,
        notifications_url=args.notifications_url,
        notifications_secret=args.notifications_secret,
    )


def describe_speed(config: EmulatorConfig) -> str:
    """How long tasks take, for the start-up line."""
    if config.is_instant:
        return "instant"
    if config.task_seconds is not None:
        speed = f"{config.task_seconds:g}s per task"
    elif config.realistic_durations:
        speed = "realistic durations"
    else:
        speed = f"{config.pending_seconds:g}s pending + {config.processing_seconds:g}s processing"
    if config.time_scale != 1:
        speed += f" x {config.time_scale:g}"
    spread = spread_of(config)
    if spread:
        seed = "" if config.duration_seed is None else f", seed {config.duration_seed}"
        speed += f", spread {spread:g}{seed}"
    return speed


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = build_config(args)
    except ConfigError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    speed = describe_speed(config)
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
