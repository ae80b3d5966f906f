"""Server-side cursors: results streamed to the client in batches through getMore.

A cursor holds a lazy source of encoded documents (a suspended plan), never its whole result set.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Hashable, Iterator
from typing import Any

from bson import Int64
from bson.raw_bson import RawBSONDocument

from .errors import CommandError

DEFAULT_FIRST_BATCH = 101
# Replies must stay under the 16 MiB document limit, with room for the envelope.
MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024
IDLE_TIMEOUT = 600.0


class Cursor:
    """An open result set: a lazy source of BSON documents."""

    def __init__(self, namespace: str, source: Iterator[bytes], session: Hashable | None) -> None:
        self.id = 0
        self.namespace = namespace
        self.session = session
        self.last_used = time.monotonic()
        self._source = source
        self._next: bytes | None = None
        self._done = False

    @property
    def exhausted(self) -> bool:
        """Whether every document has been handed out."""
        self._peek()
        return self._done

    def _peek(self) -> None:
        if self._next is None and not self._done:
            try:
                self._next = next(self._source)
            except StopIteration:
                self._done = True

    def take(self, limit: int | None) -> list[RawBSONDocument]:
        """The next batch: at most limit documents and at most MAX_BATCH_BYTES."""
        batch: list[RawBSONDocument] = []
        size = 0
        while limit is None or len(batch) < limit:
            self._peek()
            raw = self._next
            if raw is None:
                break
            if batch and size + len(raw) > MAX_BATCH_BYTES:
                break
            batch.append(RawBSONDocument(raw))
            size += len(raw)
            self._next = None
        return batch

    def close(self) -> None:
        """Release the source (e.g. a sort's temporary table)."""
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
        self._done = True


class CursorTable:
    """Open cursors of the whole server (a getMore may come on any pooled connection)."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._cursors: dict[int, Any] = {}
        self._idle_timeout = idle_timeout

    def __len__(self) -> int:
        return len(self._cursors)

    def open(
        self,
        namespace: str,
        source: Iterator[bytes],
        *,
        batch_size: int | None,
        single_batch: bool = False,
        session: Hashable | None = None,
    ) -> dict[str, Any]:
        """Start a cursor over source and return the reply's `cursor` field (firstBatch)."""
        cursor = Cursor(namespace, source, session)
        batch = cursor.take(DEFAULT_FIRST_BATCH if batch_size is None else batch_size)
        cursor_id = 0
        if single_batch or cursor.exhausted:
            cursor.close()
        else:
            cursor_id = self.register(cursor)
        return {"firstBatch": batch, "id": Int64(cursor_id), "ns": namespace}

    def register(self, cursor: Any) -> int:
        """Give a cursor an id and keep it."""
        cursor_id = self._new_id()
        cursor.id = cursor_id
        self._cursors[cursor_id] = cursor
        return cursor_id

    def find(self, cursor_id: int, namespace: str) -> Any:
        """The open cursor with this id, checked against the namespace a getMore names."""
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise CommandError(43, f"cursor id {cursor_id} not found")
        if cursor.namespace != namespace:
            raise CommandError(
                13,
                f"Requested getMore on namespace '{namespace}', but cursor belongs to a "
                f"different namespace {cursor.namespace}",
            )
        cursor.last_used = time.monotonic()
        return cursor

    def get_more(self, cursor: Cursor, batch_size: int | None) -> dict[str, Any]:
        """The next batch of a query cursor, closing it once exhausted."""
        batch = cursor.take(batch_size or None)
        cursor_id = cursor.id
        if cursor.exhausted:
            self.discard(cursor_id)
            cursor_id = 0
        return {"nextBatch": batch, "id": Int64(cursor_id), "ns": cursor.namespace}

    def discard(self, cursor_id: int) -> None:
        """Close and forget a cursor."""
        cursor = self._cursors.pop(cursor_id, None)
        if cursor is not None:
            cursor.close()

    def kill(self, cursor_ids: list[int]) -> tuple[list[int], list[int]]:
        """Close cursors; returns (killed, not found)."""
        killed, missing = [], []
        for cursor_id in cursor_ids:
            if cursor_id in self._cursors:
                self.discard(cursor_id)
                killed.append(cursor_id)
            else:
                missing.append(cursor_id)
        return killed, missing

    def kill_sessions(self, sessions: set[Hashable]) -> None:
        """Close every cursor opened under one of these logical sessions."""
        for cursor_id in [c.id for c in self._cursors.values() if c.session in sessions]:
            self.discard(cursor_id)

    def clear(self) -> None:
        """Close every cursor."""
        for cursor_id in list(self._cursors):
            self.discard(cursor_id)

    def reap(self) -> None:
        """Close cursors idle for longer than the timeout."""
        deadline = time.monotonic() - self._idle_timeout
        for cursor_id in [c.id for c in self._cursors.values() if c.last_used < deadline]:
            self.discard(cursor_id)

    def _new_id(self) -> int:
        while True:
            cursor_id = secrets.randbits(62) + 1
            if cursor_id not in self._cursors:
                return cursor_id
