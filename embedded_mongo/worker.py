"""The engine thread: it alone owns the SQLite connection and executes commands, in batches.

Commands that arrive while a batch executes and commits wait in the queue; the next batch takes
all of them, runs them in one transaction and commits once (group commit). Replies, of reads too,
are handed to the event loop only after that commit, so nobody sees data that could still be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import Binary, Int64

from . import ttl, wire
from .commands import Engine
from .context import AwaitData, CommandContext
from .errors import CommandError
from .oplog import timestamp

logger = logging.getLogger(__name__)

MAX_BATCH = 512
SWEEP_INTERVAL = 60.0
# A command or commit taking longer is logged (MongoDB's slowms): everyone else waits for it.
SLOW_SECONDS = 0.1
_SIGNATURE = {"hash": Binary(bytes(20)), "keyId": Int64(0)}


@dataclass
class Connection:
    """A client connection as commands see it."""

    id: int
    me: str


@dataclass
class Outcome:
    """What became of one job: reply bytes (None for moreToCome), a wait, or a broken message."""

    reply: bytes | None = None
    wait: AwaitData | None = None
    close: str | None = None


@dataclass
class Job:
    """One client message handed to the engine thread; `done` is called on the event loop with its Outcome."""

    message: wire.Message
    connection: Connection
    done: Callable[[Job, Outcome], None]
    deadline: float | None = None
    final: bool = False


class EngineThread:
    """Runs an Engine on its own thread, fed through a queue."""

    def __init__(
        self,
        open_engine: Callable[[], Engine],
        loop: asyncio.AbstractEventLoop,
        on_commit: Callable[[int], None],
        ttl_interval: float,
    ) -> None:
        self._open_engine = open_engine
        self._loop = loop
        self._on_commit = on_commit
        self._ttl_interval = ttl_interval
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="embedded-mongo-engine", daemon=True)
        self._started: asyncio.Future[None] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._reply_ids = 0
        self.engine: Engine | None = None
        self.cpu_seconds = 0.0  # spent executing batches, for serverStatus

    async def start(self) -> None:
        """Open the storage on the engine thread; raises what opening raised."""
        self._thread.start()
        await self._started

    def submit(self, job: Job) -> None:
        """Queue a job (thread-safe, never blocks)."""
        self._queue.put(job)

    async def stop(self) -> None:
        """Finish queued work, close the storage and end the thread."""
        if not self._thread.is_alive():
            return
        self._queue.put(None)
        await self._stopped
        self._thread.join()

    # -- on the engine thread ----------------------------------------------------------------

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self._loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        try:
            engine = self.engine = self._open_engine()
        except Exception as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._call(_settle, self._started, exc)
            return
        self._call(_settle, self._started, None)
        try:
            self._serve(engine)
        finally:
            try:
                engine.close()
                engine.storage.close()
            except Exception:  # closing must not hide why we stopped
                logger.exception("closing the storage failed")
            self._call(_settle, self._stopped, None)

    def _serve(self, engine: Engine) -> None:
        now = time.monotonic()
        next_trim, next_ttl, next_sweep = now, now + self._ttl_interval, now + SWEEP_INTERVAL
        while True:
            timeout = max(0.0, min(next_trim, next_ttl, next_sweep) - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
                stop = False
            else:
                stop = first is None
            if first is not None:
                jobs = [first]
                while len(jobs) < MAX_BATCH:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    jobs.append(job)
                self._batch(engine, jobs)
            if stop:
                return
            now = time.monotonic()
            if now >= next_trim:
                self._maintain(engine, lambda: engine.storage.oplog.trim())
                next_trim = now + engine.storage.oplog.history.trim_interval
            if now >= next_ttl:
                self._maintain(engine, lambda: ttl.reap(engine.storage))
                next_ttl = now + self._ttl_interval
            if now >= next_sweep:
                engine.maintain()
                self._maintain(engine, lambda: engine.retryable.expire())
                next_sweep = now + SWEEP_INTERVAL

    def _maintain(self, engine: Engine, task: Callable[[], int]) -> None:
        storage = engine.storage
        try:
            storage.begin()
            changed = task()
            storage.commit()
        except Exception:  # housekeeping failures are logged and retried at the next interval
            logger.exception("engine maintenance failed")
            if storage.in_transaction:
                storage.rollback()
            return
        if changed:
            self._call(self._on_commit, storage.oplog.committed_ts)

    def _batch(self, engine: Engine, jobs: list[Job]) -> None:
        started = time.thread_time()
        storage = engine.storage
        outcomes: list[Outcome] = []
        try:
            storage.begin()
            outcomes = [self._execute(engine, job) for job in jobs]
            committing = time.perf_counter()
            storage.commit()
            took = time.perf_counter() - committing
            if took >= SLOW_SECONDS:
                logger.warning("slow commit: %.0f ms for a batch of %d commands", took * 1000, len(jobs))
        except Exception as exc:  # a failed commit (disk full, I/O error): nothing of the batch happened
            logger.exception("engine batch failed")
            if storage.in_transaction:
                try:
                    storage.rollback()
                except sqlite3.Error:
                    logger.exception("rollback failed")
            engine.cursors.clear()
            engine.retryable.forget_cache()
            error = CommandError(14031 if "full" in str(exc) else 1, f"the change could not be saved: {exc}")
            outcomes = [self._failed(job, error) for job in jobs]
        self._call(self._deliver, jobs, outcomes, storage.oplog.committed_ts)
        self.cpu_seconds += time.thread_time() - started

    def _failed(self, job: Job, error: CommandError) -> Outcome:
        request_id = job.message.request_id
        reply = wire.encode_reply(job.message.op_code, self._next_reply_id(), request_id, error.to_reply())
        return Outcome(reply=None if job.message.more_to_come else reply)

    def _next_reply_id(self) -> int:
        self._reply_ids = (self._reply_ids + 1) & 0x7FFFFFFF
        return self._reply_ids

    def _execute(self, engine: Engine, job: Job) -> Outcome:
        try:
            request = wire.parse(job.message)
        except wire.ProtocolError as exc:
            return Outcome(close=str(exc))
        ctx = CommandContext(job.connection.id, job.connection.me, final=job.final, thread=self)
        started = time.perf_counter()
        result = engine.execute(request, ctx)
        took = time.perf_counter() - started
        if took >= SLOW_SECONDS:
            _log_slow(request, took)
        if isinstance(result, AwaitData):
            return Outcome(wait=result)
        if request.more_to_come:
            return Outcome()
        cluster_time = timestamp(engine.storage.oplog.last_ts)
        result["operationTime"] = cluster_time
        result["$clusterTime"] = {"clusterTime": cluster_time, "signature": _SIGNATURE}
        try:
            reply = wire.encode_reply(request.op_code, self._next_reply_id(), request.request_id, result)
        except Exception as exc:  # e.g. a value BSON cannot encode: report it, keep the connection
            logger.exception("cannot encode reply")
            error = CommandError(1, f"cannot encode reply: {exc}").to_reply()
            reply = wire.encode_reply(request.op_code, self._next_reply_id(), request.request_id, error)
        return Outcome(reply=reply)

    # -- on the event loop -------------------------------------------------------------------

    def _deliver(self, jobs: list[Job], outcomes: list[Outcome], committed_ts: int) -> None:
        self._on_commit(committed_ts)
        for job, outcome in zip(jobs, outcomes, strict=True):
            job.done(job, outcome)


def _log_slow(request: wire.Request, seconds: float) -> None:
    name, target = next(iter(request.command.items()), ("?", None))
    where = f"{request.database}.{target}" if isinstance(target, str) else request.database
    shape = {key: request.command[key] for key in ("filter", "query", "sort", "pipeline") if key in request.command}
    logger.warning("slow command: %s on %s took %.0f ms %s", name, where, seconds * 1000, _shape(shape))


def _shape(value: Any) -> Any:
    """A query with its values left out (they may be personal data): the fields and operators only."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:3]] + (["…"] if len(value) > 3 else [])
    return "?"


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
