"""The embedded MongoDB server: an asyncio TCP server speaking the wire protocol to an engine thread.

The event loop only moves bytes: it frames messages, answers the data-free handshake commands itself
(so a long command never delays a driver's heartbeat) and hands everything else to the engine thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import shutil
import signal
import struct
import sys
import tempfile
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from bson import Binary, Int64, ObjectId

from . import legacy, wire
from .commands import Engine
from .context import AwaitData
from .datadir import DirectoryLock
from .identity import VERSION, ServerIdentity, hello_reply
from .oplog import History, timestamp
from .storage import DB_FILE, Storage
from .worker import Connection, EngineThread, Job, Outcome

logger = logging.getLogger(__name__)

_FAST_COMMANDS = {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo"}
_FAST_MAX_BYTES = 64 * 1024
_SIGNATURE = {"hash": Binary(bytes(20)), "keyId": Int64(0)}
_HEADER = struct.Struct("<iiii")


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
        self._connections: set[_Connection] = set()
        self._connection_ids = itertools.count(1)
        self._reply_ids = itertools.count(1)
        self._committed_ts = 0
        self._history_waiters: list[Callable[[], None]] = []
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
            self._server = await loop.create_server(self._new_connection, self._host, self._port)
        except BaseException:
            await self._shutdown()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        logger.debug("embedded MongoDB listening on %s", self.uri)

    async def close(self) -> None:
        """Stop accepting, drop client connections, finish queued work and close the store."""
        self._closing.set()
        waiting, self._history_waiters = self._history_waiters, []
        for wake in waiting:  # awaiting getMores get their (empty) answer now
            wake()
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await self._shutdown()  # queued work is finished before the engine thread stops

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
            waiting, self._history_waiters = self._history_waiters, []
            for wake in waiting:
                wake()

    def _new_connection(self) -> _Connection:
        return _Connection(self, next(self._connection_ids))

    def _me(self, transport: asyncio.BaseTransport) -> str:
        host = self._host
        if host in ("", "0.0.0.0", "::"):
            sockname = transport.get_extra_info("sockname")
            host = sockname[0] if sockname else "127.0.0.1"
        return f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}"

    def _topology_wait(self, command: dict) -> float:
        """Seconds a streaming hello waits for a topology change (this server's never changes), else 0."""
        if next(iter(command)) not in ("hello", "isMaster", "ismaster"):
            return 0.0
        version = command.get("topologyVersion")
        wait_ms = command.get("maxAwaitTimeMS")
        if not isinstance(version, dict) or not isinstance(wait_ms, (int, float)) or self._closing.is_set():
            return 0.0
        if version.get("processId") != self._identity.process_id:
            return 0.0  # the client saw another process: tell it about this one at once
        return max(0.0, wait_ms / 1000)

    def _answer_here(self, request: wire.Request, connection: Connection) -> bytes | None:
        """hello, ping and buildInfo, answered on the loop: they read no data."""
        command = request.command
        name = next(iter(command))
        reply: dict[str, Any]
        if name in ("hello", "isMaster", "ismaster"):
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


class _Connection(asyncio.Protocol):
    """One client connection: frames messages and answers them one at a time, in order."""

    def __init__(self, server: EmbeddedMongo, number: int) -> None:
        self._server = server
        self._number = number
        self._buffer = bytearray()
        self._queue: collections.deque[wire.Message] = collections.deque()
        self._busy = False
        self._transport: asyncio.Transport | None = None
        self._connection: Connection | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream transport (uvloop's is no subclass)
        self._connection = Connection(self._number, self._server._me(transport))
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._waiting is not None:
            self._waiting.cancel()

    def close(self) -> None:
        """Drop the connection (the server is closing)."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 16:
            length, request_id, _response_to, op_code = _HEADER.unpack_from(buffer)
            if length < 16 or length > wire.MAX_MESSAGE_SIZE + 1024 * 1024:
                self._broken(f"invalid message length {length}")
                return
            if op_code not in (wire.OP_MSG, wire.OP_QUERY):
                self._broken(f"unsupported opCode {op_code}")
                return
            if len(buffer) < length:
                break
            self._queue.append(wire.Message(request_id, op_code, bytes(buffer[16:length])))
            del buffer[:length]
        self._next()

    def _broken(self, reason: str) -> None:
        logger.warning("closing connection %d: %s", self._number, reason)
        self._buffer.clear()
        self._queue.clear()
        if self._transport is not None:
            self._transport.close()

    def _next(self) -> None:
        """Start on the next message unless one is being answered."""
        while not self._busy and self._queue and self._transport is not None:
            message = self._queue.popleft()
            name = message.command_name()
            server = self._server
            if name in _FAST_COMMANDS and len(message.body) <= _FAST_MAX_BYTES:
                try:
                    request = wire.parse(message)
                except wire.ProtocolError as exc:
                    self._broken(str(exc))
                    return
                wait = server._topology_wait(request.command)
                if wait:
                    self._busy = True
                    self._waiting = asyncio.ensure_future(self._answer_later(request, wait))
                    return
                self._send(server._answer_here(request, self._connection_info()))
                continue
            thread = server._thread
            if thread is None:
                self._broken("the server is closing")
                return
            self._busy = True
            thread.submit(Job(message, self._connection_info(), self._done))

    def _connection_info(self) -> Connection:
        assert self._connection is not None
        return self._connection

    async def _answer_later(self, request: wire.Request, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server._closing.wait(), seconds)
        self._waiting = None
        self._busy = False
        self._send(self._server._answer_here(request, self._connection_info()))
        self._next()

    def _send(self, reply: bytes | None) -> None:
        if reply is not None and self._transport is not None:
            self._transport.write(reply)

    def _done(self, job: Job, outcome: Outcome) -> None:
        """(On the loop) the engine answered a job of this connection."""
        if self._transport is None:
            return
        if outcome.close is not None:
            self._broken(outcome.close)
            return
        if outcome.wait is not None:
            self._await_history(job, outcome.wait)
            return
        self._busy = False
        self._send(outcome.reply)
        self._next()

    def _await_history(self, job: Job, wait: AwaitData) -> None:
        """A tailable getMore found nothing: run it again once history grows, or at its deadline."""
        server = self._server
        loop = asyncio.get_running_loop()
        if job.deadline is None:
            job.deadline = loop.time() + wait.seconds

        def again() -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._transport is None or server._thread is None:
                return
            job.final = loop.time() >= (job.deadline or 0) or server._closing.is_set()
            server._thread.submit(job)

        if server._committed_ts > wait.seen_ts or server._closing.is_set():
            again()
            return
        fired = [False]

        def once() -> None:
            if not fired[0]:
                fired[0] = True
                again()

        server._history_waiters.append(once)
        self._timer = loop.call_at(job.deadline, once)


class _EndOfInput(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def serve(
    host: str, port: int, data_dir: str | os.PathLike | None, *, until_stdin_closes: bool = False, **options: Any
) -> None:
    """Run an embedded MongoDB until cancelled or sent SIGINT/SIGTERM, then close cleanly.

    until_stdin_closes: also stop when standard input ends, as it does when a parent process holding it dies.
    """
    async with EmbeddedMongo(data_dir, host=host, port=port, **options) as server:
        sys.stdout.write(f"listening on {server.uri}\n")  # what scripts starting the server wait for
        sys.stdout.flush()
        logger.info("serving %s from %s", server.uri, server.data_dir)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if until_stdin_closes:
            await loop.connect_read_pipe(lambda: _EndOfInput(stop), sys.stdin)
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
