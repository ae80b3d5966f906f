"""Write-ahead journal of effects, with group commit.

A record is `u32 length | u32 crc32(payload) | payload`; a journal payload is `u64 sequence`
followed by concatenated BSON effect documents.  Effects are appended to an in-memory buffer
as commands execute; one flusher task writes and fsyncs everything buffered in one go, so
commands that arrive while an fsync is running share the next one (group commit).  The
journal can move on to a new file (`rotate`) so that a snapshot can be written while writes
continue; older files are deleted once a snapshot covers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import bson

from .wire import CODEC

logger = logging.getLogger(__name__)

_RECORD_HEADER = struct.Struct("<II")
_SEQUENCE = struct.Struct("<Q")
MAX_RECORD_SIZE = 64 * 1024 * 1024
# Effects of one command are split into records of about this size.
_CHUNK_BYTES = 4 * 1024 * 1024


class CorruptFileError(Exception):
    """A journal or snapshot is damaged somewhere other than a torn final record."""


def frame(payload: bytes) -> bytes:
    """One length-prefixed, checksummed record."""
    return _RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class ScanResult:
    """Records read from a file, and where the valid part of the file ends."""

    payloads: list[bytes]
    valid_length: int
    file_length: int


def scan(path: str, start: int = 0) -> ScanResult:
    """Read every record; a torn or corrupt *last* record ends the scan, anything else raises."""
    with open(path, "rb") as handle:
        data = handle.read()
    payloads: list[bytes] = []
    offset = start
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            break  # torn header at the end
        length, checksum = _RECORD_HEADER.unpack_from(data, offset)
        start, end = offset + _RECORD_HEADER.size, offset + _RECORD_HEADER.size + length
        if length == 0 or length > MAX_RECORD_SIZE:
            if not any(data[offset:]):
                break  # zero-filled tail left by a crash
            if end >= len(data) or length > MAX_RECORD_SIZE:
                break  # a garbage length field that runs past the end: torn tail
            raise CorruptFileError(f"{path}: invalid record length {length} at offset {offset}")
        if end > len(data):
            break  # torn payload at the end
        payload = data[start:end]
        if zlib.crc32(payload) != checksum:
            if end == len(data):
                break  # the last record was torn mid-write
            raise CorruptFileError(f"{path}: checksum mismatch in record at offset {offset}")
        payloads.append(payload)
        offset = end
    return ScanResult(payloads, offset, len(data))


def journal_payload(sequence: int, effects: list[bytes]) -> bytes:
    """A journal record payload: sequence number then BSON effects."""
    return _SEQUENCE.pack(sequence) + b"".join(effects)


def read_journal(path: str, last: bool = True) -> Iterator[tuple[int, list[dict]]]:
    """(sequence, effects) of every intact record, truncating a torn tail from the last file."""
    if not os.path.exists(path):
        return
    result = scan(path)
    if result.valid_length < result.file_length and not last:
        raise CorruptFileError(
            f"{path}: damaged record at offset {result.valid_length} in a journal file that is not the last one"
        )
    if result.valid_length < result.file_length:
        logger.warning(
            "%s: ignoring %d bytes of a torn final record at offset %d",
            path,
            result.file_length - result.valid_length,
            result.valid_length,
        )
        with open(path, "r+b") as handle:
            handle.truncate(result.valid_length)
            handle.flush()
            os.fsync(handle.fileno())
    for payload in result.payloads:
        (sequence,) = _SEQUENCE.unpack_from(payload, 0)
        yield sequence, bson.decode_all(payload[_SEQUENCE.size :], CODEC)


def fsync_directory(directory: str) -> None:
    """Make file creations, renames and deletions in directory durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalFailedError(Exception):
    """The journal could not be written; later writes are refused."""


class Journal:
    """Append-only journal file with batched fsyncs."""

    def __init__(self, path: str, last_sequence: int) -> None:
        self.path = path
        self.fsync_count = 0
        self.records_written = 0
        self._file: BinaryIO = open(path, "ab")  # closed by close() or rotate()
        self._next_sequence = last_sequence + 1
        self._durable = last_sequence
        self._pending: list[tuple[int, bytes]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._failure: BaseException | None = None
        self._flusher: asyncio.Task[None] | None = None

    @property
    def last_sequence(self) -> int:
        """Sequence number of the last appended record."""
        return self._next_sequence - 1

    def start(self) -> None:
        """Start the flusher task."""
        self._flusher = asyncio.create_task(self._run(), name=f"journal-flusher:{self.path}")

    def append(self, effects: list[dict]) -> int:
        """Buffer a command's effects; returns the sequence to wait for."""
        if self._failure is not None:
            raise JournalFailedError(f"journal unavailable: {self._failure}")
        chunk: list[bytes] = []
        size = 0
        for effect in effects:
            encoded = bson.encode(effect, codec_options=CODEC)
            if chunk and size + len(encoded) > _CHUNK_BYTES:
                self._buffer(chunk)
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded)
        if chunk:
            self._buffer(chunk)
        return self.last_sequence

    def _buffer(self, effects: list[bytes]) -> None:
        sequence = self._next_sequence
        self._next_sequence += 1
        self._pending.append((sequence, frame(journal_payload(sequence, effects))))
        self._wakeup.set()

    async def wait_durable(self, sequence: int) -> None:
        """Wait until every record up to sequence is on disk."""
        if sequence <= self._durable:
            return
        if self._failure is not None:
            raise JournalFailedError(f"journal unavailable: {self._failure}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((sequence, future))
        self._wakeup.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            async with self._lock:
                await self._flush()

    async def _flush(self) -> None:
        """Write and fsync everything buffered (caller holds the lock)."""
        if not self._pending or self._failure is not None:
            return
        batch, self._pending = self._pending, []
        data = b"".join(record for _, record in batch)
        try:
            await asyncio.to_thread(self._write_and_sync, data)
        except Exception as exc:  # disk full, I/O error: fail every waiting writer
            logger.exception("journal write failed: %s", self.path)
            self._failure = exc
            self._release(None, exc)
            return
        self.records_written += len(batch)
        self._mark_durable(batch[-1][0])

    def _write_and_sync(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.fsync_count += 1

    def _mark_durable(self, sequence: int) -> None:
        self._durable = max(self._durable, sequence)
        self._release(self._durable, None)

    def _release(self, durable: int | None, error: BaseException | None) -> None:
        remaining = []
        for sequence, future in self._waiters:
            if future.done():
                continue
            if error is not None:
                future.set_exception(JournalFailedError(f"journal write failed: {error}"))
            elif durable is not None and sequence <= durable:
                future.set_result(None)
            else:
                remaining.append((sequence, future))
        self._waiters = remaining

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold off the flusher (after flushing what is buffered), e.g. while rotating."""
        async with self._lock:
            await self._flush()
            yield

    async def rotate(self, path: str) -> None:
        """Continue in a new, empty file (call inside `paused()`, so the old one is complete)."""
        await asyncio.to_thread(self._reopen, path)

    def _reopen(self, path: str) -> None:
        new_file = open(path, "ab")
        # The new file's directory entry must be durable before records fsync'd into it count.
        fsync_directory(os.path.dirname(path) or ".")
        self._file.close()
        self._file, self.path = new_file, path

    async def close(self) -> None:
        """Flush what is buffered, stop the flusher and close the file."""
        if self._flusher is not None:
            async with self._lock:
                await self._flush()
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                self._flusher = None
        if self._waiters:
            self._release(None, JournalFailedError("journal closed"))
        self._file.close()
