"""Notes between gateway processes on one database, such as a reply for a widget visitor whose socket another
process holds: written to the `signals` collection, followed by every process through a change stream where
the server has them (a replica set, the embedded engine), by polling the collection otherwise."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final

from bson import ObjectId
from pymongo.errors import OperationFailure, PyMongoError

from gateway.model import utcnow
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

Listener = Callable[[Mapping[str, Any]], Awaitable[None]]

CHANGE_STREAM: Final = "change stream"
POLLING: Final = "polling"
# MongoDB's answers where there are no change streams (a standalone server).
_NO_CHANGE_STREAMS = {40573, 40415, 115}
# Polling looks this far back again: ids are made by each process's clock, which may lag another's.
_CLOCK_SLACK = timedelta(seconds=5)
_RETRY_SECONDS = 1.0


class Signals:
    """Sends notes to the other processes and hands the notes they send to listeners, by kind."""

    def __init__(self, store: Storage, holder: str, poll_seconds: float = 0.5) -> None:
        self.store = store
        self.holder = holder
        self.poll_seconds = poll_seconds
        self.mode: str | None = None  # CHANGE_STREAM or POLLING, once known
        self._listeners: dict[str, list[Listener]] = {}
        self._resume: Mapping[str, Any] | None = None  # where the change stream is, to resume a dropped one

    def listen(self, kind: str, listener: Listener) -> None:
        """Call `listener` with the payload of every note of this kind another process sends."""
        self._listeners.setdefault(kind, []).append(listener)

    async def send(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Hand a note to every other process (none is kept for a process that starts later)."""
        if self._listeners.get(kind):  # every process runs the same code: someone may be listening
            doc = {"_id": ObjectId(), "kind": kind, "payload": dict(payload), "from": self.holder, "at": utcnow()}
            await self.store.signals.insert_one(doc)

    async def run(self) -> None:
        """Follow the other processes' notes until cancelled."""
        if not self._listeners:
            return
        while True:
            try:
                if self.mode != POLLING:
                    await self._follow_stream()
                else:
                    await self._poll()
            except OperationFailure as err:
                if err.code in _NO_CHANGE_STREAMS and self.mode != POLLING:
                    self.mode = POLLING
                    logger.info("no change streams on this server (%s): polling for other processes' notes", err)
                    continue
                logger.warning("following other processes' notes failed: %s", err)
            except PyMongoError as err:
                logger.warning("following other processes' notes failed: %s", err)
            await asyncio.sleep(_RETRY_SECONDS)

    async def _follow_stream(self) -> None:
        pipeline = [{"$match": {"operationType": "insert", "fullDocument.from": {"$ne": self.holder}}}]
        while True:
            try:
                async with await self.store.signals.watch(
                    pipeline, resume_after=self._resume, max_await_time_ms=1000
                ) as stream:
                    if self.mode is None:
                        logger.info("following other processes' notes through a change stream")
                    self.mode = CHANGE_STREAM
                    async for change in stream:
                        self._resume = stream.resume_token
                        await self._deliver(change["fullDocument"])
            except OperationFailure as err:
                if err.code != 286 or self._resume is None:  # 286: the resume point is no longer in the history
                    raise
                logger.warning("notes from other processes were missed (the change history moved on)")
                self._resume = None

    async def _poll(self) -> None:
        seen: dict[ObjectId, None] = {}
        after = ObjectId.from_datetime(utcnow())
        while True:
            since = ObjectId.from_datetime(after.generation_time - _CLOCK_SLACK)
            cursor = self.store.signals.find({"_id": {"$gt": since}}, sort=[("_id", 1)], limit=500)
            async for doc in cursor:
                if doc["_id"] in seen or doc.get("from") == self.holder:
                    continue
                seen[doc["_id"]] = None
                after = max(after, doc["_id"])
                await self._deliver(doc)
            while len(seen) > 10_000:
                seen.pop(next(iter(seen)))
            await asyncio.sleep(self.poll_seconds)

    async def _deliver(self, doc: Mapping[str, Any]) -> None:
        for listener in self._listeners.get(doc.get("kind", ""), ()):
            try:
                await listener(doc.get("payload") or {})
            except Exception:  # one failing listener must not stop the notes
                logger.exception("a listener failed on a note of kind %s", doc.get("kind"))
