"""The embedded MongoDB server: an asyncio TCP server speaking the wire protocol to an engine thread.

The event loop only moves bytes: it frames messages, answers the data-free handshake commands itself
(so a long command never delays a driver's heartbeat) and hands everything else to the engine thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
from types import TracebackType
from typing import Any

from bson import Binary, Int64, ObjectId

from . import legacy, wire
from .commands import Engine
from .datadir import DirectoryLock
from .identity import VERSION, ServerIdentity, hello_reply
from .oplog import History, timestamp
from .storage import DB_FILE, Storage
from .worker import Connection, EngineThread, Job, Outcome

logger = logging.getLogger(__name__)

_FAST_COMMANDS = {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo"}
_FAST_MAX_BYTES = 64 * 1024
_SIGNATURE = {"hash": Binary(bytes(20)), "keyId": Int64(0)}


class EmbeddedMongo:
    """A MongoDB-compatible server on a TCP port, keeping its data in SQLite under data_dir.

    data_dir None keeps the data in a private temporary directory, removed on close.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_mb: int = 64,
        history: History | None = None,
        ttl_interval: float = 60.0,
    ) -> None:
        self._data_dir = os.fspath(data_dir) if data_dir is not None else None
        self._host = host
        self._port = port
        self._cache_mb = cache_mb
        self._history = history or History()
        self._ttl_interval = ttl_interval
        self._identity = ServerIdentity(ObjectId())
        self._server: asyncio.Server | None = None
        self._thread: EngineThread | None = None
        self._lock: DirectoryLock | None = None
        self._temporary: str | None = None
        self._connections: dict[asyncio.Task, asyncio.StreamWriter] = {}
        self._connection_ids = itertools.count(1)
        self._reply_ids = itertools.count(1)
        self._committed_ts = 0
        self._history_event = asyncio.Event()
        self._closing = asyncio.Event()

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
    def data_dir(self) -> str | None:
        """Where the data lives (the temporary directory when constructed with None)."""
        return self._data_dir or self._temporary

    @property
    def engine(self) -> Engine | None:
        """The engine (for introspection in tests; it must only be used from the engine thread)."""
        return self._thread.engine if self._thread is not None else None

    async def start(self) -> None:
        """Open (or convert) the store, start the engine thread, then listen."""
        loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        self._history_event = asyncio.Event()
        durable = self._data_dir is not None
        if self._data_dir is None:
            self._temporary = tempfile.mkdtemp(prefix="embedded-mongo-")
            directory = self._temporary
        else:
            directory = self._data_dir
            os.makedirs(directory, exist_ok=True)
        lock = DirectoryLock(directory)
        try:
            lock.acquire()
            self._lock = lock
            if legacy.needs_conversion(directory):
                await asyncio.to_thread(legacy.convert, directory, self._cache_mb)
            path = os.path.join(directory, DB_FILE)
            cache_mb, history, identity = self._cache_mb, self._history, self._identity

            def open_engine() -> Engine:
                return Engine(Storage(path, cache_mb=cache_mb, durable=durable, history=history), identity)

            self._thread = EngineThread(open_engine, loop, self._advanced, self._ttl_interval)
            await self._thread.start()
            assert self._thread.engine is not None
            self._committed_ts = self._thread.engine.storage.oplog.committed_ts
            self._server = await asyncio.start_server(self._serve_connection, self._host, self._port)
        except BaseException:
            await self._shutdown()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        logger.debug("embedded MongoDB listening on %s", self.uri)

    async def close(self) -> None:
        """Stop accepting, drop client connections, finish queued work and close the store."""
        self._closing.set()
        self._history_event.set()
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._thread is not None:
            await self._thread.stop()
            self._thread = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    async def __aenter__(self) -> EmbeddedMongo:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    # -- connections -------------------------------------------------------------------------

    def _advanced(self, committed_ts: int) -> None:
        """(On the loop) the engine committed history up to committed_ts: wake awaiting change streams."""
        if committed_ts > self._committed_ts:
            self._committed_ts = committed_ts
            self._history_event.set()
            self._history_event = asyncio.Event()

    def _me(self, writer: asyncio.StreamWriter) -> str:
        host = self._host
        if host in ("", "0.0.0.0", "::"):
            sockname = writer.get_extra_info("sockname")
            host = sockname[0] if sockname else "127.0.0.1"
        return f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}"

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections[task] = writer
        connection = Connection(next(self._connection_ids), self._me(writer))
        try:
            while True:
                message = await wire.read_message(reader)
                if message is None:
                    break
                name = message.command_name()
                if name in _FAST_COMMANDS and len(message.body) <= _FAST_MAX_BYTES:
                    reply = await self._answer_here(message, connection)
                else:
                    outcome = await self._run(message, connection)
                    if outcome.close is not None:
                        raise wire.ProtocolError(outcome.close)
                    reply = outcome.reply
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except wire.ProtocolError as exc:
            logger.warning("closing connection %d: %s", connection.id, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _run(self, message: wire.Message, connection: Connection) -> Outcome:
        """Have the engine thread execute a message; tailable getMores wait here for new history."""
        assert self._thread is not None
        loop = asyncio.get_running_loop()
        job = Job(message, connection, loop.create_future())
        while True:
            event = self._history_event
            self._thread.submit(job)
            outcome = await job.future
            if outcome.wait is None:
                return outcome
            if job.deadline is None:
                job.deadline = loop.time() + outcome.wait.seconds
            job.future = loop.create_future()
            if self._committed_ts <= outcome.wait.seen_ts and not self._closing.is_set():
                remaining = job.deadline - loop.time()
                if remaining > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), remaining)
            job.final = loop.time() >= job.deadline or self._closing.is_set()

    async def _answer_here(self, message: wire.Message, connection: Connection) -> bytes | None:
        """hello, ping and buildInfo, answered on the loop: they read no data."""
        try:
            request = wire.parse(message)
        except wire.ProtocolError:
            raise
        command = request.command
        name = next(iter(command))
        reply: dict[str, Any]
        if name in ("hello", "isMaster", "ismaster"):
            await self._await_topology_change(command)
            reply = hello_reply(command, connection.id, connection.me, self._identity, self._committed_ts)
        elif name == "ping":
            reply = {"ok": 1.0}
        else:
            reply = {
                "version": VERSION,
                "versionArray": [7, 0, 0, 0],
                "gitVersion": "embedded",
                "bits": 64,
                "debug": False,
                "maxBsonObjectSize": wire.MAX_BSON_OBJECT_SIZE,
                "storageEngines": ["sqlite"],
                "ok": 1.0,
            }
        if request.more_to_come:
            return None
        cluster_time = timestamp(self._committed_ts)
        reply["operationTime"] = cluster_time
        reply["$clusterTime"] = {"clusterTime": cluster_time, "signature": _SIGNATURE}
        return wire.encode_reply(request.op_code, next(self._reply_ids) & 0x7FFFFFFF, request.request_id, reply)

    async def _await_topology_change(self, command: dict) -> None:
        """A streaming hello waits up to maxAwaitTimeMS for a change; this server's topology never changes."""
        version = command.get("topologyVersion")
        wait_ms = command.get("maxAwaitTimeMS")
        if not isinstance(version, dict) or not isinstance(wait_ms, (int, float)):
            return
        if version.get("processId") != self._identity.process_id:
            return  # the client saw another process: tell it about this one at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), max(0, wait_ms) / 1000)


async def serve(host: str, port: int, data_dir: str | os.PathLike | None, **options: Any) -> None:
    """Run an embedded MongoDB until cancelled or sent SIGINT/SIGTERM, then close cleanly."""
    async with EmbeddedMongo(data_dir, host=host, port=port, **options) as server:
        sys.stdout.write(f"listening on {server.uri}\n")  # what scripts starting the server wait for
        sys.stdout.flush()
        logger.info("serving %s from %s", server.uri, server.data_dir)
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
