"""Command line: `gateway run`, `gateway check-config`, `gateway embedded-db`, `gateway backup`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from gateway.config import ConfigError, Settings, load_settings


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `gateway` console script."""
    parser = argparse.ArgumentParser(prog="gateway", description="Omnichannel messenger gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the gateway")
    run.add_argument("--config", "-c", default="config.toml", help="TOML config file (default: config.toml)")
    check = commands.add_parser("check-config", help="validate a config file without starting")
    check.add_argument("file")
    engine = commands.add_parser("embedded-db", help="run the embedded MongoDB engine alone (for several gateways)")
    engine.add_argument("--port", type=int, default=27017)
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument("--data-dir", required=True)
    engine.add_argument("--cache-mb", type=int, default=64, help="page cache (default 64)")
    engine.add_argument("--history-mb", type=int, default=256, help="change history kept, in MB (default 256)")
    engine.add_argument("--history-hours", type=float, default=24, help="change history kept, in hours (default 24)")
    copy = commands.add_parser("backup", help="copy a (running) embedded engine's data into a new directory")
    copy.add_argument("dest", help="a directory to create; storage.data_dir can start from it")
    source = copy.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", help="the engine's data directory")
    source.add_argument("--config", "-c", help="take storage.data_dir from this config file")
    args = parser.parse_args(argv)

    if args.command == "embedded-db":
        run_engine(args)
        return
    if args.command == "backup":
        make_backup(args)
        return
    try:
        settings = load_settings(args.config if args.command == "run" else args.file)
    except ConfigError as err:
        print(f"configuration error:\n{err}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "check-config":
        enabled = [s for s in ("telegram", "whatsapp", "webwidget", "operator_bot", "api") if getattr(settings, s)]
        print(f"{settings.source}: OK (enabled: {', '.join(enabled) or 'nothing'}; storage: {settings.storage.uri})")
        return

    from gateway.logs import setup_logging

    setup_logging(settings.logging)
    settings.log_disabled_parts()
    try:
        run_loop(run_gateway(settings))
    except ConfigError as err:  # found at start-up, e.g. a bot token Telegram rejects, a data_dir in use
        print(f"configuration error:\n{err}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as err:  # the address is taken or not ours
        server = settings.server
        print(
            f"{settings.source}: server.host/port: cannot listen on {server.host}:{server.port}: {err.strerror}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop where it is installed (Linux, macOS): the same asyncio code, less CPU per I/O."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def run_engine(args: argparse.Namespace) -> None:
    """`gateway embedded-db`: the engine alone, serving any number of gateway processes."""
    from embedded_mongo import DataDirectoryInUseError, History, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    history = History(max_bytes=args.history_mb * 1024 * 1024, max_age_seconds=args.history_hours * 3600)
    try:
        run_loop(serve(args.host, args.port, args.data_dir, cache_mb=args.cache_mb, history=history))
    except DataDirectoryInUseError as err:
        print(f"--data-dir: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def make_backup(args: argparse.Namespace) -> None:
    """`gateway backup DEST`: a consistent copy of the embedded store, taken while it runs."""
    from embedded_mongo import backup

    data_dir = args.data_dir
    if data_dir is None:
        try:
            data_dir = load_settings(args.config).storage.data_dir
        except ConfigError as err:
            print(f"configuration error:\n{err}", file=sys.stderr)
            raise SystemExit(2) from None
    try:
        copied = backup(data_dir, args.dest)
    except (OSError, ValueError) as err:  # no store there, or dest not empty
        print(f"backup failed: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"backed up {data_dir} to {copied}")


async def run_gateway(settings: Settings) -> None:
    """Start the gateway, listen until SIGINT or SIGTERM, then stop it; a failed start is cleaned up too."""
    from gateway.app import create_app, make_runner

    server = settings.server
    runner = make_runner(create_app(settings))
    try:
        await runner.setup()
        await web.TCPSite(runner, server.host, server.port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # before saying so: a stop sent on hearing it is handled
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("gateway").info(
            "listening on http://%s:%d (public URL %s)", server.host, server.port, server.public_url
        )
        await stop.wait()
    finally:
        # Closes whatever started, in reverse order, even when start-up failed halfway.
        await runner.cleanup()


if __name__ == "__main__":
    main()
