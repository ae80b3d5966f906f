"""The history of changes (an oplog table written in the same transaction as each change) and cluster time."""

from __future__ import annotations

import datetime
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import bson
from bson import Timestamp

from .wire import CODEC

SCHEMA = """
CREATE TABLE IF NOT EXISTS oplog (
    ts INTEGER PRIMARY KEY,
    wall INTEGER NOT NULL,
    db TEXT NOT NULL,
    coll TEXT,
    cum INTEGER NOT NULL,
    entry BLOB NOT NULL
);
"""

_TRIM_CHUNK = 1000


@dataclass(frozen=True)
class History:
    """How much change history change streams can resume from: trimmed by total size and by age."""

    max_bytes: int = 256 * 1024 * 1024
    max_age_seconds: float | None = 24 * 3600.0
    trim_interval: float = 1.0  # seconds between trims


def timestamp(ts: int) -> Timestamp:
    """A cluster time as a BSON Timestamp."""
    return Timestamp(ts >> 32, ts & 0xFFFFFFFF)


def ts_of(value: Timestamp) -> int:
    """A BSON Timestamp as the integer cluster time the oplog is keyed by."""
    return (value.time << 32) | value.inc


def resume_token(ts: int, invalidate: bool = False) -> dict[str, Any]:
    """The resume token of the event at ts (or the high-water mark ts)."""
    return {"_data": f"{ts:016X}" + ("01" if invalidate else "")}


def token_ts(token: Any) -> tuple[int, bool] | None:
    """(ts, is an invalidate token) of a resume token made by resume_token, or None if it is not one."""
    data = token.get("_data") if isinstance(token, dict) else None
    if not isinstance(data, str) or len(data) not in (16, 18):
        return None
    try:
        return int(data[:16], 16), data[16:] == "01"
    except ValueError:
        return None


class Oplog:
    """Appends, reads and trims the change history; owns the cluster clock."""

    def __init__(self, conn: sqlite3.Connection, history: History) -> None:
        self._conn = conn
        self.history = history
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT ts, cum FROM oplog ORDER BY ts DESC LIMIT 1").fetchone()
        self.trimmed_upto = self._meta_int("oplog_trimmed_upto")
        self.last_ts = max(row[0] if row else 0, self.trimmed_upto, self._meta_int("clock"))
        self._cum = row[1] if row else 0
        self.committed_ts = self.last_ts

    def _meta_int(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_ts(self) -> int:
        """A new cluster time, later than every earlier one (even if the wall clock went back)."""
        seconds = int(time.time())
        ts = max(self.last_ts + 1, seconds << 32 | 1)
        self.last_ts = ts
        return ts

    def append(self, db: str, coll: str | None, entry: dict[str, Any]) -> int:
        """Record one change; returns its cluster time."""
        ts = self.next_ts()
        now = time.time()
        entry["w"] = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
        encoded = bson.encode(entry, codec_options=CODEC)
        self._cum += len(encoded)
        self._conn.execute(
            "INSERT INTO oplog (ts, wall, db, coll, cum, entry) VALUES (?, ?, ?, ?, ?, ?)",
            (ts, int(now * 1000), db, coll, self._cum, encoded),
        )
        return ts

    def mark_committed(self) -> None:
        """Everything appended so far is committed (called after COMMIT)."""
        self.committed_ts = self.last_ts

    def rolled_back(self) -> None:
        """Forget the running size total of entries that were rolled back."""
        row = self._conn.execute("SELECT cum FROM oplog ORDER BY ts DESC LIMIT 1").fetchone()
        self._cum = row[0] if row else 0

    def read(
        self, after: int, db: str | None, coll: str | None, limit: int
    ) -> list[tuple[int, str, str | None, bytes]]:
        """Up to limit (ts, db, coll, entry) after ts `after`, of one database (or all) and collection (or all)."""
        columns = "SELECT ts, db, coll, entry FROM oplog WHERE ts > ?"
        args: list[Any]
        if db is None:
            sql, args = f"{columns} ORDER BY ts LIMIT ?", [after, limit]
        elif coll is None:
            sql, args = f"{columns} AND db = ? ORDER BY ts LIMIT ?", [after, db, limit]
        else:
            sql = f"{columns} AND db = ? AND (coll = ? OR coll IS NULL) ORDER BY ts LIMIT ?"
            args = [after, db, coll, limit]
        return self._conn.execute(sql, args).fetchall()

    def last_scanned(self, after: int, limit: int) -> int | None:
        """The ts of the limit-th entry after `after` (how far a bounded scan got), None if fewer exist."""
        row = self._conn.execute(
            "SELECT ts FROM oplog WHERE ts > ? ORDER BY ts LIMIT 1 OFFSET ?", (after, limit - 1)
        ).fetchone()
        return row[0] if row else None

    def trim(self, now: float | None = None) -> int:
        """Drop entries beyond the size and age limits; returns how many were dropped."""
        now = time.time() if now is None else now
        limit_ts = 0
        if self.history.max_age_seconds is not None:
            limit_ts = int(now - self.history.max_age_seconds) << 32
        # An entry stays if it and every later one fit in max_bytes: it starts at cum - length(entry).
        threshold = self._cum - self.history.max_bytes
        dropped = 0
        while True:
            row = self._conn.execute(
                "SELECT ts, cum - length(entry) FROM oplog ORDER BY ts LIMIT 1 OFFSET ?", (_TRIM_CHUNK - 1,)
            ).fetchone()
            if row is None:
                row = self._conn.execute(
                    "SELECT ts, cum - length(entry) FROM oplog ORDER BY ts DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    break
            ts, start = row
            if ts < limit_ts or start < threshold:
                upto = ts
            else:
                found = self._conn.execute(
                    "SELECT MAX(ts) FROM oplog WHERE ts <= ? AND (ts < ? OR cum - length(entry) < ?)",
                    (ts, limit_ts, threshold),
                ).fetchone()
                if found is None or found[0] is None:
                    break
                upto = found[0]
            dropped += self._conn.execute("DELETE FROM oplog WHERE ts <= ?", (upto,)).rowcount
            self.trimmed_upto = max(self.trimmed_upto, upto)
            if upto != ts:
                break
        if dropped:
            self._set_meta("oplog_trimmed_upto", self.trimmed_upto)
            self._set_meta("clock", self.last_ts)
        return dropped

    def first_ts(self) -> int | None:
        """The oldest ts still in the history."""
        row = self._conn.execute("SELECT ts FROM oplog ORDER BY ts LIMIT 1").fetchone()
        return row[0] if row else None
