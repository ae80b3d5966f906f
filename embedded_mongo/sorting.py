"""In-memory sorts (the SORT stage) with a bounded buffer that spills into a temporary SQLite table."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

from . import keys
from .values import MISSING, UNDEFINED, path_values

# Beyond this many bytes of buffered documents a sort continues in a temporary table on disk.
MEMORY_BYTES = 32 * 1024 * 1024
_READ_CHUNK = 512


def sort_key(doc: dict, spec: list[tuple[str, int]]) -> bytes:
    """Bytes ordering documents as MongoDB sorts them (arrays by their smallest or largest element)."""
    parts = []
    for path, direction in spec:
        candidates: list[bytes] = []
        for value in path_values(doc, path.split(".")):
            if isinstance(value, list):
                if value:
                    candidates.extend(keys.encode(item) for item in value)
                else:
                    candidates.append(keys.encode(UNDEFINED))
            else:
                candidates.append(keys.encode(MISSING if value is MISSING else value))
        chosen = min(candidates) if direction > 0 else max(candidates)
        parts.append(chosen if direction > 0 else keys.invert(chosen))
    return b"".join(parts)


class Sorter:
    """Sorts (rid, BSON, document) items, keeping at most `keep` of them when a limit is known."""

    def __init__(
        self, conn: Any, spec: list[tuple[str, int]], keep: int | None, table: str, memory_bytes: int | None = None
    ) -> None:
        self._conn = conn
        self._spec = spec
        self._keep = keep
        self._table = table
        self._memory_bytes = MEMORY_BYTES if memory_bytes is None else memory_bytes

    def sort(self, items: Iterator[tuple[int, bytes, dict]]) -> Iterator[tuple[int, bytes]]:
        """The items' (rid, BSON) in sort order (stable: ties keep their input order)."""
        keyed = ((sort_key(doc, self._spec), seq, rid, raw) for seq, (rid, raw, doc) in enumerate(items))
        if self._keep is not None:
            for _key, _seq, rid, raw in heapq.nsmallest(self._keep, keyed):
                yield rid, raw
            return
        buffered: list[tuple[bytes, int, int, bytes]] = []
        size = 0
        for item in keyed:
            buffered.append(item)
            size += len(item[3]) + len(item[0])
            if size > self._memory_bytes:
                yield from self._spill(buffered, keyed)
                return
        buffered.sort()
        for _key, _seq, rid, raw in buffered:
            yield rid, raw

    def _spill(
        self, buffered: list[tuple[bytes, int, int, bytes]], rest: Iterator[tuple[bytes, int, int, bytes]]
    ) -> Iterator[tuple[int, bytes]]:
        table = self._table
        conn = self._conn
        conn.execute(
            f"CREATE TEMP TABLE {table} (k BLOB NOT NULL, seq INTEGER NOT NULL, rid INTEGER NOT NULL, "
            "doc BLOB NOT NULL, PRIMARY KEY (k, seq)) WITHOUT ROWID"
        )
        try:
            insert = f"INSERT INTO {table} (k, seq, rid, doc) VALUES (?, ?, ?, ?)"
            conn.executemany(insert, buffered)
            buffered.clear()
            while True:
                chunk = list(itertools.islice(rest, _READ_CHUNK))
                if not chunk:
                    break
                conn.executemany(insert, chunk)
            position: tuple[bytes, int] | None = None
            while True:
                if position is None:
                    rows = conn.execute(
                        f"SELECT k, seq, rid, doc FROM {table} ORDER BY k, seq LIMIT ?", (_READ_CHUNK,)
                    ).fetchall()
                else:
                    rows = conn.execute(
                        f"SELECT k, seq, rid, doc FROM {table} WHERE (k, seq) > (?, ?) ORDER BY k, seq LIMIT ?",
                        (*position, _READ_CHUNK),
                    ).fetchall()
                for _key, _seq, rid, raw in rows:
                    yield rid, raw
                if len(rows) < _READ_CHUNK:
                    return
                position = (rows[-1][0], rows[-1][1])
        finally:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
