"""Conversion of a data directory written by the previous engine (snapshot.bin + journal-NNNNNNNN.bin).

That format: `snapshot.bin` is a magic string then records, each `u32 length | u32 crc32 | payload`:
a header `{format: 1, sequence}`, batches of BSON effects, and an end marker `{end, count}`. Journal
files hold records whose payload is `u64 sequence` followed by BSON effects; a torn final record is
ignored. Effects are {o: put|del|create|drop|dropDatabase|index|dropIndex, db, c, ...}. On first
start the engine replays them into its SQLite file and moves the old files to `legacy-backup/`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import bson

from . import keys
from .indexes import IndexSpec
from .query import decode
from .storage import DB_FILE, Storage
from .wire import CODEC

logger = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.bin"
SNAPSHOT_MAGIC = b"GWEMBSN1"
BACKUP_DIR = "legacy-backup"
_JOURNAL_NAME = re.compile(r"^journal-(\d{8})\.bin$")
_RECORD_HEADER = struct.Struct("<II")
_SEQUENCE = struct.Struct("<Q")
_MAX_RECORD_SIZE = 64 * 1024 * 1024
_INDEX_FIELDS = {"key", "name", "unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "hidden"}


class LegacyFormatError(Exception):
    """The old files are damaged somewhere other than a torn final journal record."""


def _records(path: str, start: int = 0) -> tuple[list[bytes], bool]:
    """Payloads of a record file, and whether it ends cleanly (a torn tail is where a crash cut a write)."""
    with open(path, "rb") as handle:
        data = handle.read()
    payloads: list[bytes] = []
    offset = start
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            break  # torn header at the end
        length, checksum = _RECORD_HEADER.unpack_from(data, offset)
        begin, end = offset + _RECORD_HEADER.size, offset + _RECORD_HEADER.size + length
        if length == 0 or length > _MAX_RECORD_SIZE:
            if not any(data[offset:]) or end >= len(data) or length > _MAX_RECORD_SIZE:
                break  # zero-filled or garbage tail left by a crash
            raise LegacyFormatError(f"{path}: invalid record length {length} at offset {offset}")
        if end > len(data):
            break  # torn payload at the end
        payload = data[begin:end]
        if zlib.crc32(payload) != checksum:
            if end == len(data):
                break  # the last record was torn mid-write
            raise LegacyFormatError(f"{path}: checksum mismatch in record at offset {offset}")
        payloads.append(payload)
        offset = end
    return payloads, offset == len(data)


def journal_files(data_dir: str) -> list[str]:
    """The old engine's journal files, oldest first."""
    numbered = []
    for name in os.listdir(data_dir):
        match = _JOURNAL_NAME.match(name)
        if match:
            numbered.append((int(match.group(1)), os.path.join(data_dir, name)))
    return [path for _, path in sorted(numbered)]


def needs_conversion(data_dir: str) -> bool:
    """Whether the directory holds old-format data and no SQLite store yet."""
    if os.path.exists(os.path.join(data_dir, DB_FILE)):
        return False
    return os.path.exists(os.path.join(data_dir, SNAPSHOT_FILE)) or bool(journal_files(data_dir))


def read_effects(data_dir: str) -> Iterator[dict[str, Any]]:
    """Every effect of the old store in order: the snapshot's, then journal records it does not cover."""
    covered = 0
    snapshot = os.path.join(data_dir, SNAPSHOT_FILE)
    if os.path.exists(snapshot):
        with open(snapshot, "rb") as handle:
            if handle.read(len(SNAPSHOT_MAGIC)) != SNAPSHOT_MAGIC:
                raise LegacyFormatError(f"{snapshot}: not a snapshot file (bad magic)")
        payloads, clean = _records(snapshot, len(SNAPSHOT_MAGIC))
        if not clean or len(payloads) < 2:
            raise LegacyFormatError(f"{snapshot}: incomplete snapshot")
        header = bson.decode(payloads[0], codec_options=CODEC)
        trailer = bson.decode(payloads[-1], codec_options=CODEC)
        if header.get("format") != 1 or not trailer.get("end"):
            raise LegacyFormatError(f"{snapshot}: unrecognised snapshot header or trailer")
        covered = int(header["sequence"])
        for payload in payloads[1:-1]:
            yield from bson.decode_all(payload, CODEC)
    files = journal_files(data_dir)
    for position, path in enumerate(files):
        payloads, clean = _records(path)
        if not clean and position != len(files) - 1:
            raise LegacyFormatError(f"{path}: damaged record in a journal file that is not the last one")
        for payload in payloads:
            (sequence,) = _SEQUENCE.unpack_from(payload, 0)
            if sequence > covered:
                yield from bson.decode_all(payload[_SEQUENCE.size :], CODEC)


def _apply(storage: Storage, effect: dict[str, Any]) -> None:
    op, db = effect["o"], effect["db"]
    name = effect.get("c", "")
    coll = storage.collection(db, name) if name else None
    if op == "put":
        doc = effect["d"]
        coll = coll or storage.create_collection(db, name)
        raw = bson.encode(doc, codec_options=CODEC)
        found = storage.get(coll, keys.encode(doc["_id"]))
        if found is None:
            storage.insert(coll, doc, raw, log=False, check=False)
        else:
            storage.replace(coll, found[0], decode(found[1]), doc, raw, old_raw=found[1], replacement=True, log=False)
    elif op == "del" and coll is not None:
        found = storage.get(coll, keys.encode(effect["id"]))
        if found is not None:
            storage.delete(coll, found[0], decode(found[1]), found[1], log=False)
    elif op == "create":
        if coll is None:
            storage.create_collection(db, name, effect.get("options") or {})
    elif op == "drop" and coll is not None:
        storage.drop_collection(coll, log=False)
    elif op == "dropDatabase":
        for existing in storage.collections_of(db):
            storage.drop_collection(existing, log=False)
    elif op == "index":
        coll = coll or storage.create_collection(db, name)
        spec_doc = {k: v for k, v in effect["spec"].items() if k in _INDEX_FIELDS}
        spec = IndexSpec.from_document(spec_doc)
        existing_index = coll.index(spec.name)
        if existing_index is not None:
            storage.drop_index(coll, existing_index)
        storage.create_index(coll, spec)
    elif op == "dropIndex" and coll is not None:
        existing_index = coll.index(effect["name"])
        if existing_index is not None:
            storage.drop_index(coll, existing_index)


def convert(data_dir: str, cache_mb: int = 64) -> int:
    """Replay the old files into a new SQLite store, then move them to legacy-backup/; returns effects applied."""
    target = os.path.join(data_dir, DB_FILE)
    partial = target + ".converting"
    for leftover in (partial, partial + "-wal", partial + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    storage = Storage(partial, cache_mb=cache_mb, durable=True)
    applied = 0
    try:
        storage.begin()
        for effect in read_effects(data_dir):
            _apply(storage, effect)
            applied += 1
        storage.commit()
    except BaseException:
        if storage.in_transaction:
            storage.rollback()
        storage.close()
        raise
    storage.close()
    for leftover in (partial + "-wal", partial + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    os.replace(partial, target)
    backup = os.path.join(data_dir, BACKUP_DIR)
    os.makedirs(backup, exist_ok=True)
    old_files = [os.path.join(data_dir, SNAPSHOT_FILE), *journal_files(data_dir)]
    for path in old_files:
        if os.path.exists(path):
            os.replace(path, os.path.join(backup, os.path.basename(path)))
    _fsync_directory(data_dir)
    logger.info(
        "converted %s from the previous engine's format (%d changes replayed); old files kept in %s",
        data_dir,
        applied,
        backup,
    )
    return applied


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
