"""Retryable writes: the reply of each session's latest write, kept in the same transaction as the write.

A driver retries a write (same lsid and txnNumber) when it lost the connection before the reply;
answering the retry with the recorded reply keeps the write from being applied twice, even across a
restart of the engine.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import bson

from .errors import CommandError
from .wire import CODEC

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    lsid BLOB PRIMARY KEY,
    txn INTEGER NOT NULL,
    at REAL NOT NULL,
    reply BLOB NOT NULL
);
"""
# Drivers end idle sessions after logicalSessionTimeoutMinutes (30); keep records a while longer.
SESSION_LIFETIME = 3600.0


class RetryableWrites:
    """Per logical session: the txnNumber of its latest retryable write and that write's reply."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(SCHEMA)
        # The latest txnNumber of sessions seen since start, so most lookups need no query.
        self._latest: dict[bytes, int] = {}

    def lookup(self, lsid: bytes, txn: int) -> dict[str, Any] | None:
        """The recorded reply if this write already ran; raises for a txnNumber older than the latest."""
        latest = self._latest.get(lsid)
        if latest is not None and latest < txn:
            return None
        row = self._conn.execute("SELECT txn, reply FROM sessions WHERE lsid = ?", (lsid,)).fetchone()
        if row is None or row[0] < txn:
            return None
        if row[0] > txn:
            raise CommandError(
                225,
                f"Retryable write with txnNumber {txn} is prohibited on session because a "
                f"newer retryable write with txnNumber {row[0]} has already started on this "
                "session.",
            )
        reply = bson.decode(row[1], codec_options=CODEC)
        reply["retriedStmtIds"] = []
        return reply

    def record(self, lsid: bytes, txn: int, reply: dict[str, Any]) -> None:
        """Remember a write's reply for its session."""
        self._conn.execute(
            "INSERT OR REPLACE INTO sessions (lsid, txn, at, reply) VALUES (?, ?, ?, ?)",
            (lsid, txn, time.time(), bson.encode(reply, codec_options=CODEC)),
        )
        self._latest[lsid] = txn

    def forget_cache(self) -> None:
        """Drop the in-memory view (after a rollback, the table is the truth)."""
        self._latest.clear()

    def expire(self, now: float | None = None) -> int:
        """Forget sessions idle for longer than their lifetime; returns how many."""
        now = time.time() if now is None else now
        self._latest.clear()
        return self._conn.execute("DELETE FROM sessions WHERE at < ?", (now - SESSION_LIFETIME,)).rowcount
