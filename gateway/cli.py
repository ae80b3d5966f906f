"""Command line: `gateway run`, `gateway check-config`, `gateway embedded-db`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

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
    engine = commands.add_parser("embedded-db", help="run the embedded MongoDB engine alone")
    engine.add_argument("--port", type=int, default=27017)
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)

    if args.command == "embedded-db":
        from gateway.storage.embedded import serve

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(serve(args.host, args.port, args.data_dir))
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
        asyncio.run(run_gateway(settings))
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


async def run_gateway(settings: Settings) -> None:
    """Start the gateway, listen until SIGINT or SIGTERM, then stop it; a failed start is cleaned up too."""
    from gateway.app import create_app, make_runner

    server = settings.server
    runner = make_runner(create_app(settings))
    try:
        await runner.setup()
        await web.TCPSite(runner, server.host, server.port).start()
        logging.getLogger("gateway").info(
            "listening on http://%s:%d (public URL %s)", server.host, server.port, server.public_url
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        # Closes whatever started, in reverse order, even when start-up failed halfway.
        await runner.cleanup()


if __name__ == "__main__":
    main()
