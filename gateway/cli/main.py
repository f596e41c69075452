"""The `mjgate` command: `serve`, `emulator`, `settings`, and the operator commands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings
from gateway.variables import SETTINGS

if TYPE_CHECKING:  # imported when serving only: the CLI's other commands start faster
    from starlette.applications import Starlette


def _serve(args: argparse.Namespace) -> int:
    import logging

    from gateway import logs
    from gateway.cli import announce
    from gateway.cli.configcheck import check
    from gateway.local import sandbox
    from gateway.local.embedded import EmbeddedRedis, EmbeddedRedisError
    from gateway.logs import configure_logging

    settings, problems = check(os.environ)
    for problem in problems:
        print(f"mjgate: {problem.level}: {problem.message}", file=sys.stderr)
    if settings is None or any(p.level == "error" for p in problems):
        return 2
    configure_logging(settings.log_level, settings.log_format)
    in_sandbox = not os.environ.get("GOAPI_API_KEY", "").strip()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets
    # the finally below stop the embedded Redis and the sandbox emulator too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    embedded = None
    emulator = None
    serving = False
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis((settings.data_dir / "redis").resolve())
            try:
                url = embedded.start()
            except EmbeddedRedisError as exc:
                print(f"mjgate: could not start the embedded Redis: {exc}", file=sys.stderr)
                return 1
            settings = _with(settings, redis_url=url)
        if in_sandbox:
            try:
                emulator = sandbox.start_emulator(settings)
            except sandbox.SandboxError as exc:
                print(f"mjgate: could not start the sandbox: {exc}", file=sys.stderr)
                return 1
            print(sandbox.banner(settings), flush=True)
        lines = announce.starting(
            settings, sandbox=in_sandbox, embedded_dir=embedded.data_dir if embedded else None
        )
        print("\n".join(lines), flush=True)
        logs.event("serving", host=settings.host, port=settings.port, sandbox=in_sandbox,
                   redis="embedded" if embedded else announce.redact(settings.redis_url or ""),
                   admin_api=bool(settings.admin_token))  # fmt: skip
        serving = True
        _run(settings)
        return 0
    finally:
        if emulator is not None:
            sandbox.stop_emulator(settings, emulator)
        if embedded is not None:
            embedded.stop()
        if serving:
            logs.event("stopped", logging.INFO)
            print("mjgate: stopped", flush=True)


def _run(settings: Settings) -> None:
    import uvicorn

    from gateway.app import create_app

    app = create_app(settings)
    if settings.admin_port is None:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # its loggers keep mjgate's handler (gateway.logs)
            access_log=False,
            loop="uvloop",
            http=_protocol(settings),
        )
    else:
        _serve_with_admin_port(app, settings)


def _serve_with_admin_port(app: Starlette, settings: Settings) -> None:
    """The client API on MJGATE_PORT and the admin API alone on MJGATE_ADMIN_PORT, in one
    process and one event loop, sharing the app's state. The main server's signal handling
    stops both; the admin server starts once the main app's lifespan has set the state up."""
    import asyncio
    import contextlib

    import uvicorn
    import uvloop

    from gateway.admin.routes import admin_only_app

    assert settings.admin_port is not None
    common: dict[str, Any] = {
        "host": settings.host,
        "log_level": "warning",
        "log_config": None,
        "access_log": False,
        "http": _protocol(settings),
    }
    main = uvicorn.Server(uvicorn.Config(app, port=settings.port, **common))
    admin = uvicorn.Server(
        uvicorn.Config(admin_only_app(app), port=settings.admin_port, lifespan="off", **common)
    )
    admin.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def serve() -> None:
        main_task = asyncio.create_task(main.serve())
        # uvicorn has a `started` flag, no event: poll it until the lifespan has run
        while not main.started and not main_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        admin_task = asyncio.create_task(admin.serve())
        try:
            await main_task
        finally:
            admin.should_exit = True
            await admin_task

    uvloop.run(serve())


def _protocol(settings: Settings) -> Any:
    """uvicorn's httptools protocol with mjgate's connection bounds (gateway.connections)."""
    from gateway.connections import guarded_protocol

    return guarded_protocol(settings.request_read_timeout, settings.max_connections)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _with(settings: Settings, **changes: object) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


EMULATOR_HELP = """\
mjgate emulator: run the GoAPI emulator alone (a GoAPI-compatible Midjourney upstream that
runs offline, for trying clients and for tests); the same program as `python -m emulator`.
"""


def _emulator(args: argparse.Namespace, rest: Sequence[str]) -> int:
    from emulator.cli import main as emulator_main

    if "-h" in rest or "--help" in rest:
        print(EMULATOR_HELP)
    return emulator_main(list(rest))


def _settings(args: argparse.Namespace) -> int:
    """Print every setting with its default, as the README's table (Markdown)."""
    print("| Variable | Default | Meaning |\n|---|---|---|")
    for s in SETTINGS:
        print(
            f"| `{s.env}` | `{s.default}` | {s.help} |"
            if s.default
            else f"| `{s.env}` | (empty) | {s.help} |"
        )
    return 0


SERVE_HELP = """\
Run the gateway: the client API (/api/v1/task), GoAPI's webhooks, /healthz, /readyz,
/metrics, and the admin API (/admin/v1) when MJGATE_ADMIN_TOKEN is set.

Every setting comes from the environment (`mjgate settings` lists them; `mjgate check-config`
validates them without starting). With no GOAPI_API_KEY it runs the sandbox: the built-in
emulator as upstream, a demo pool, the demo client key and a sandbox admin token (printed at
start). With no REDIS_URL it runs an embedded Redis whose data is kept in
MJGATE_DATA_DIR/redis/. SIGTERM or Ctrl-C stops it gracefully.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="run the gateway (settings from MJGATE_* variables)",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser(
        "emulator", help="run the GoAPI emulator alone (see --help)", add_help=False
    )
    commands.add_parser("settings", help="list every setting with its default")
    commands.add_parser("check-config", help="validate the settings and the pool file")
    try:
        from gateway.cli.commands import add_commands
    except ImportError:  # the operator commands are optional in a minimal install
        pass
    else:
        add_commands(commands)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    """Validate what `mjgate serve` validates at start, without starting; exit 2 on an error."""
    from gateway.cli.configcheck import check, load_pool_file
    from gateway.local.sandbox import SANDBOX_GOAPI_KEY

    settings, problems = check(os.environ)
    for problem in problems:
        print(f"mjgate: {problem.level}: {problem.message}", file=sys.stderr)
    if settings is None or any(p.level == "error" for p in problems):
        return 2
    if settings.pool_file is not None:
        pool = load_pool_file(settings.pool_file)
        print(
            f"pool file {settings.pool_file}: {len(pool.accounts)} accounts, "
            f"strategy {pool.strategy.value}, mode {settings.pool_file_mode}"
        )
    print("settings ok" + (" (sandbox)" if settings.goapi_api_key == SANDBOX_GOAPI_KEY else ""))
    if settings.redis_url is None:
        print(f"redis: embedded, started by `mjgate serve` (data in {settings.data_dir / 'redis'})")
        return 0
    from gateway.redisconn import print_topology

    return print_topology(settings)  # connects: the topology found, or exit 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # what is still buffered may meet the closed pipe too
        return code
    except BrokenPipeError:  # the reader went away (`| head`): no traceback, as other CLIs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str]) -> int:
    if argv[:1] == ["emulator"]:
        return _emulator(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "settings":
        return _settings(args)
    if args.command == "check-config":
        return _check_config(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        build_parser().print_help()
        return 2
    result: int = handler(args)
    return result
