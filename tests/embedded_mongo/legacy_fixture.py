"""Writes a data directory in the previous engine's format (snapshot.bin + journal files), from scratch.

The format (see embedded_mongo/legacy.py): records are `u32 length | u32 crc32 | payload`; the snapshot
is a magic string, a header `{format: 1, sequence}`, batches of BSON effects and `{end, count}`; a
journal record's payload is `u64 sequence` then BSON effects.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import bson


def _frame(payload: bytes) -> bytes:
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def write_snapshot(path: Path, sequence: int, effects: list[dict]) -> None:
    """A complete snapshot covering journal records up to sequence."""
    body = b"GWEMBSN1" + _frame(bson.encode({"format": 1, "sequence": sequence}))
    body += _frame(b"".join(bson.encode(e) for e in effects))
    body += _frame(bson.encode({"end": True, "count": len(effects)}))
    path.write_bytes(body)


def write_journal(path: Path, records: list[tuple[int, list[dict]]], torn_tail: bytes = b"") -> None:
    """A journal file of (sequence, effects) records, optionally ending in a torn write."""
    data = b"".join(
        _frame(struct.pack("<Q", seq) + b"".join(bson.encode(e) for e in effects)) for seq, effects in records
    )
    path.write_bytes(data + torn_tail)


def sample(directory: Path) -> None:
    """A small store: a snapshot, a journal file it partly covers, a newer one ending in a torn record."""
    directory.mkdir(parents=True, exist_ok=True)
    write_snapshot(
        directory / "snapshot.bin",
        2,
        [
            {"o": "create", "db": "app", "c": "contacts", "options": {}},
            *({"o": "put", "db": "app", "c": "contacts", "d": {"_id": i, "key": f"k{i}", "n": 0}} for i in range(5)),
            {
                "o": "index",
                "db": "app",
                "c": "contacts",
                "spec": {"v": 2, "key": {"key": 1}, "name": "key_1", "unique": True},
            },
            {"o": "create", "db": "app", "c": "gone", "options": {}},
        ],
    )
    write_journal(
        directory / "journal-00000001.bin",
        [
            (2, [{"o": "put", "db": "app", "c": "contacts", "d": {"_id": 0, "key": "stale", "n": -1}}]),  # covered
            (3, [{"o": "put", "db": "app", "c": "contacts", "d": {"_id": 1, "key": "k1", "n": 5}}]),
        ],
    )
    write_journal(
        directory / "journal-00000002.bin",
        [
            (4, [{"o": "del", "db": "app", "c": "contacts", "id": 4}, {"o": "drop", "db": "app", "c": "gone"}]),
            (
                5,
                [
                    {
                        "o": "index",
                        "db": "app",
                        "c": "reports",
                        "spec": {"v": 2, "key": {"at": 1}, "name": "expiry", "expireAfterSeconds": 86400},
                    },
                    {"o": "put", "db": "app", "c": "reports", "d": {"_id": "r", "at": None}},
                ],
            ),
        ],
        torn_tail=b"\x30\x00\x00\x00\xde\xad",
    )
