"""Embedded MongoDB: a wire-protocol server backed by mongomock, persisted to a data directory.

Run it alone with `python -m gateway.storage.embedded --port P --data-dir D [--host H]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
from types import TracebackType

from .engine.commands import CommandContext, Engine
from .engine.durability import Durability
from .engine.errors import CommandError
from .engine.journal import JournalFailedError
from .engine.store import Store
from .engine.wire import OP_QUERY, ProtocolError, Request, encode_op_msg, encode_op_reply, read_request

logger = logging.getLogger(__name__)


class EmbeddedMongo:
    """MongoDB wire-protocol server backed by mongomock, persisted to data_dir."""

    def __init__(
        self,
        data_dir: str | os.PathLike | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        snapshot_interval: float = 300.0,
    ) -> None:
        self._host = host
        self._port = port
        self._engine = Engine(Store())
        self._durability = Durability(data_dir, self._engine.store, snapshot_interval) if data_dir is not None else None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._connection_ids = itertools.count(1)
        self._request_ids = itertools.count(1)

    @property
    def port(self) -> int:
        """The TCP port listened on (the chosen one when constructed with port 0)."""
        return self._port

    @property
    def uri(self) -> str:
        """A connection string for PyMongo."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"mongodb://{host}:{self._port}/?directConnection=true"

    @property
    def durability(self) -> Durability | None:
        """The persistence layer (None when running in memory only)."""
        return self._durability

    async def start(self) -> None:
        """Recover persisted data, then start listening."""
        if self._durability is not None:
            self._durability.recover()
            self._durability.start()
        try:
            self._server = await asyncio.start_server(self._serve_connection, self._host, self._port)
        except BaseException:
            if self._durability is not None:
                await self._durability.close()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        logger.debug("embedded MongoDB listening on %s", self.uri)

    async def close(self) -> None:
        """Stop accepting, drop client connections, write a snapshot and close the journal."""
        if self._server is not None:
            self._server.close()
        # Closing the transports ends each handler at its next read; a handler waiting for the
        # journal still finishes that wait, so an in-flight write is made durable, not dropped.
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._engine.cursors.clear()
        if self._durability is not None:
            await self._durability.close()

    async def __aenter__(self) -> EmbeddedMongo:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        connection_id = next(self._connection_ids)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                reply = await self._handle(request, connection_id)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except ProtocolError as exc:
            logger.warning("closing connection %d: %s", connection_id, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, request: Request, connection_id: int) -> bytes | None:
        engine = self._engine
        reply, is_write = engine.execute(request.database, request.command, CommandContext(connection_id))
        effects = engine.store.take_effects()
        if self._durability is not None and (effects or is_write):
            # Writes wait for everything journaled so far, not only their own effects: a write
            # that found nothing to change may depend on an earlier write that is not yet durable.
            try:
                if effects:
                    self._durability.record(effects)
                await self._durability.wait_durable()
            except JournalFailedError as exc:
                reply = CommandError(1, str(exc)).to_reply()
        if request.more_to_come:
            return None
        encode = encode_op_reply if request.op_code == OP_QUERY else encode_op_msg
        try:
            return encode(next(self._request_ids), request.request_id, reply)
        except Exception as exc:  # e.g. a value BSON cannot encode: report, keep the connection
            logger.exception("cannot encode reply")
            error = CommandError(1, f"cannot encode reply: {exc}").to_reply()
            return encode(next(self._request_ids), request.request_id, error)


async def serve(host: str, port: int, data_dir: str | os.PathLike | None, *, snapshot_interval: float = 300.0) -> None:
    """Run an embedded MongoDB until cancelled or sent SIGINT/SIGTERM, then close cleanly."""
    async with EmbeddedMongo(data_dir, host=host, port=port, snapshot_interval=snapshot_interval) as server:
        logger.info("listening on %s", server.uri)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
        try:
            await stop.wait()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
        logger.info("shutting down")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.storage.embedded", description="Embedded MongoDB-compatible server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--data-dir", required=True, help="directory holding the snapshot and journal")
    parser.add_argument(
        "--snapshot-interval",
        type=float,
        default=300.0,
        help="seconds between snapshots (0 disables periodic snapshots)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.host, args.port, args.data_dir, snapshot_interval=args.snapshot_interval))


if __name__ == "__main__":
    main()
