"""The `mjgate` command: `serve`, `emulator`, `settings`, and the operator commands."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from gateway.settings import SETTINGS, Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway import sandbox
    from gateway.app import create_app
    from gateway.embedded import EmbeddedRedis, EmbeddedRedisError
    from gateway.logs import configure_logging

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"mjgate: invalid setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turning it into SystemExit lets
    # the finally below stop the embedded Redis and the sandbox emulator too.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    embedded = None
    emulator = None
    try:
        if settings.redis_url is None:
            embedded = EmbeddedRedis((settings.data_dir / "redis").resolve())
            try:
                url = embedded.start()
            except EmbeddedRedisError as exc:
                print(f"mjgate: could not start the embedded Redis: {exc}", file=sys.stderr)
                return 1
            settings = _with(settings, redis_url=url)
        if settings.sandbox:
            settings = sandbox.sandbox_settings(settings)
            emulator = sandbox.start_emulator(settings)
            print(sandbox.banner(settings), flush=True)
            settings = _with(settings, goapi_api_key=sandbox.SANDBOX_GOAPI_KEY)
        app = create_app(settings)
        if settings.admin_port is None:
            uvicorn.run(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                loop="uvloop",
                http="httptools",
            )
        else:
            _serve_with_admin_port(app, settings)
        return 0
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(10)
        if embedded is not None:
            embedded.stop()


def _serve_with_admin_port(app: Any, settings: Settings) -> None:
    """The client API on MJGATE_PORT and the admin API alone on MJGATE_ADMIN_PORT, in one
    process and one event loop, sharing the app's state. The main server's signal handling
    stops both; the admin server starts once the main app's lifespan has set the state up."""
    import asyncio
    import contextlib

    import uvicorn
    import uvloop

    from gateway.admin import admin_only_app

    assert settings.admin_port is not None
    common: dict[str, Any] = {
        "host": settings.host,
        "log_level": "warning",
        "access_log": False,
        "http": "httptools",
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


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _with(settings: Settings, **changes: object) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def _emulator(args: argparse.Namespace, rest: Sequence[str]) -> int:
    from emulator.cli import main as emulator_main

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mjgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway (settings from MJGATE_* variables)")
    commands.add_parser(
        "emulator", help="run the GoAPI emulator alone (see --help)", add_help=False
    )
    commands.add_parser("settings", help="list every setting with its default")
    commands.add_parser("check-config", help="validate the settings and the pool file")
    try:
        from gateway.admin_cli import add_commands
    except ImportError:  # the operator commands are optional in a minimal install
        pass
    else:
        add_commands(commands)
    return parser


def _check_config(args: argparse.Namespace) -> int:
    from routing.errors import PoolFileError
    from routing.poolfile import parse_pool_file

    try:
        settings = Settings.from_env(os.environ)
        if settings.pool_file is not None:
            pool = parse_pool_file(settings.pool_file.read_text())
            print(
                f"pool file {settings.pool_file}: {len(pool.accounts)} accounts, "
                f"strategy {pool.strategy.value}"
            )
    except (SettingsError, PoolFileError, OSError) as exc:
        print(f"mjgate: {exc}", file=sys.stderr)
        return 2
    print("settings ok" + (" (sandbox)" if settings.sandbox else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
