"""Compacted snapshots: every collection, document and index definition in one file.

Layout: magic, then journal-style records: a header `{format, sequence}` (the last journal
sequence the snapshot covers), effect batches that rebuild the data, and an end marker.  A
snapshot is written to a temporary file, fsync'd, renamed over the old one and the directory
fsync'd, so a reader only ever sees a complete snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import bson

from .journal import CorruptFileError, frame, fsync_directory, scan
from .store import CollectionImage
from .wire import CODEC

MAGIC = b"GWEMBSN1"
FORMAT = 1
_CHUNK_BYTES = 4 * 1024 * 1024


def write_snapshot(path: str, images: list[CollectionImage], sequence: int) -> None:
    """Atomically replace the snapshot at path (blocking: run it in a worker thread)."""
    temporary = path + ".tmp"
    count = 0
    with open(temporary, "wb") as handle:
        handle.write(MAGIC)
        handle.write(frame(bson.encode({"format": FORMAT, "sequence": sequence})))
        chunk: list[bytes] = []
        size = 0
        for effect in _effects(images):
            encoded = bson.encode(effect, codec_options=CODEC)
            chunk.append(encoded)
            size += len(encoded)
            count += 1
            if size >= _CHUNK_BYTES:
                handle.write(frame(b"".join(chunk)))
                chunk, size = [], 0
        if chunk:
            handle.write(frame(b"".join(chunk)))
        handle.write(frame(bson.encode({"end": True, "count": count})))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(os.path.dirname(path) or ".")


def _effects(images: list[CollectionImage]) -> Iterator[dict]:
    for image in images:
        db, name = image.db, image.name
        yield {"o": "create", "db": db, "c": name, "options": image.options}
        for doc in image.documents:
            yield {"o": "put", "db": db, "c": name, "d": doc}
        for spec in image.indexes:
            yield {"o": "index", "db": db, "c": name, "spec": spec}


def read_snapshot(path: str) -> tuple[int, Iterator[dict]]:
    """(covered journal sequence, effects rebuilding the data) of a snapshot file."""
    with open(path, "rb") as handle:
        magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise CorruptFileError(f"{path}: not a snapshot file (bad magic)")
    records = scan(path, start=len(MAGIC))
    if records.valid_length != records.file_length or len(records.payloads) < 2:
        raise CorruptFileError(f"{path}: incomplete snapshot (damage at offset {records.valid_length})")
    header = bson.decode(records.payloads[0], codec_options=CODEC)
    trailer = bson.decode(records.payloads[-1], codec_options=CODEC)
    if header.get("format") != FORMAT or not trailer.get("end"):
        raise CorruptFileError(f"{path}: unrecognised snapshot header or trailer")
    body = records.payloads[1:-1]

    def effects() -> Iterator[dict]:
        count = 0
        for payload in body:
            for effect in bson.decode_all(payload, CODEC):
                count += 1
                yield effect
        if count != trailer.get("count"):
            raise CorruptFileError(f"{path}: expected {trailer.get('count')} entries, found {count}")

    return int(header["sequence"]), effects()
