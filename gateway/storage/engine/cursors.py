"""Server-side cursors: result sets handed out in batches through getMore."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import Int64
from bson.raw_bson import RawBSONDocument

from .errors import CommandError
from .wire import CODEC

DEFAULT_FIRST_BATCH = 101
# Replies must stay under the 16 MiB document limit, with room for the envelope.
MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024
IDLE_TIMEOUT = 600.0


@dataclass
class Cursor:
    """One open result set."""

    id: int
    namespace: str
    documents: list[dict]
    project: Callable[[dict], dict] | None
    session: Hashable | None
    position: int = 0
    last_used: float = field(default_factory=time.monotonic)


class CursorTable:
    """Open cursors of the whole server (a getMore may come on any pooled connection)."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._cursors: dict[int, Cursor] = {}
        self._idle_timeout = idle_timeout

    def __len__(self) -> int:
        return len(self._cursors)

    def open(
        self,
        namespace: str,
        documents: list[dict],
        *,
        batch_size: int | None,
        single_batch: bool = False,
        project: Callable[[dict], dict] | None = None,
        session: Hashable | None = None,
    ) -> dict[str, Any]:
        """Start a cursor over documents and return the reply's `cursor` field (firstBatch)."""
        self._reap()
        cursor = Cursor(0, namespace, documents, project, session)
        limit = DEFAULT_FIRST_BATCH if batch_size is None else batch_size
        batch = self._take(cursor, limit)
        cursor_id = 0
        if not single_batch and cursor.position < len(documents):
            cursor_id = self._new_id()
            cursor.id = cursor_id
            self._cursors[cursor_id] = cursor
        return {"firstBatch": batch, "id": Int64(cursor_id), "ns": namespace}

    def get_more(self, cursor_id: int, namespace: str, batch_size: int | None) -> dict[str, Any]:
        """The next batch of a cursor, closing it once exhausted."""
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise CommandError(43, f"cursor id {cursor_id} not found")
        if cursor.namespace != namespace:
            raise CommandError(
                13,
                f"Requested getMore on namespace '{namespace}', but cursor "
                f"belongs to a different namespace {cursor.namespace}",
            )
        cursor.last_used = time.monotonic()
        batch = self._take(cursor, batch_size or None)
        if cursor.position >= len(cursor.documents):
            del self._cursors[cursor_id]
            cursor_id = 0
        return {"nextBatch": batch, "id": Int64(cursor_id), "ns": namespace}

    def kill(self, cursor_ids: list[int]) -> tuple[list[int], list[int]]:
        """Close cursors; returns (killed, not found)."""
        killed, missing = [], []
        for cursor_id in cursor_ids:
            (killed if self._cursors.pop(cursor_id, None) else missing).append(cursor_id)
        return killed, missing

    def kill_sessions(self, sessions: set[Hashable]) -> None:
        """Close every cursor opened under one of these logical sessions."""
        for cursor_id in [c.id for c in self._cursors.values() if c.session in sessions]:
            del self._cursors[cursor_id]

    def clear(self) -> None:
        """Close every cursor."""
        self._cursors.clear()

    def _new_id(self) -> int:
        while True:
            cursor_id = secrets.randbits(62) + 1
            if cursor_id not in self._cursors:
                return cursor_id

    def _reap(self) -> None:
        deadline = time.monotonic() - self._idle_timeout
        for cursor_id in [c.id for c in self._cursors.values() if c.last_used < deadline]:
            del self._cursors[cursor_id]

    @staticmethod
    def _take(cursor: Cursor, limit: int | None) -> list[RawBSONDocument]:
        batch: list[RawBSONDocument] = []
        size = 0
        docs = cursor.documents
        while cursor.position < len(docs) and (limit is None or len(batch) < limit):
            doc = docs[cursor.position]
            if cursor.project is not None:
                doc = cursor.project(doc)
            raw = bson.encode(doc, codec_options=CODEC)
            if batch and size + len(raw) > MAX_BATCH_BYTES:
                break
            batch.append(RawBSONDocument(raw))
            size += len(raw)
            cursor.position += 1
        return batch
