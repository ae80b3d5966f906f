"""`python -m embedded_mongo --port P --data-dir D`: run the embedded MongoDB alone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from .datadir import DataDirectoryInUseError
from .oplog import History
from .server import serve


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop  # less CPU per byte moved, where it is installed
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m embedded_mongo", description="Embedded MongoDB-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--data-dir", required=True, help="directory holding the SQLite store")
    parser.add_argument("--cache-mb", type=int, default=64, help="SQLite page cache (MiB)")
    parser.add_argument("--history-mb", type=int, default=256, help="change history kept for change streams (MiB)")
    parser.add_argument("--history-hours", type=float, default=24.0, help="age of the oldest change history kept")
    parser.add_argument("--ttl-interval", type=float, default=60.0, help="seconds between TTL index passes")
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="also stop when standard input ends (a parent process died)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    history = History(max_bytes=args.history_mb * 1024 * 1024, max_age_seconds=args.history_hours * 3600)
    try:
        _run(
            serve(
                args.host,
                args.port,
                args.data_dir,
                cache_mb=args.cache_mb,
                history=history,
                ttl_interval=args.ttl_interval,
                until_stdin_closes=args.until_stdin_closes,
            )
        )
    except DataDirectoryInUseError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
