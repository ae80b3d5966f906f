"""Persistence of a Store in a data directory: snapshot + journal files, recovery, checkpoints.

The directory holds `snapshot.bin` and one or more journal files `journal-NNNNNNNN.bin`
(replayed in number order).  A checkpoint captures the store, moves the journal on to a new
file, writes the snapshot while writes continue into the new file, then deletes the older
journal files.  Journal records carry sequence numbers and the snapshot records the last one
it covers, so recovery never applies a covered record twice, whenever a crash happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re

from .journal import Journal, fsync_directory, read_journal
from .snapshot import read_snapshot, write_snapshot
from .store import Store

try:
    import fcntl
except ImportError:  # not on POSIX: no protection against a second process
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.bin"
LOCK_FILE = "LOCK"
_JOURNAL_NAME = re.compile(r"^journal-(\d{8})\.bin$")


class DataDirectoryInUseError(RuntimeError):
    """Another process has the data directory open."""


class Durability:
    """Recovers a Store from a data directory and keeps every recorded effect durable."""

    def __init__(self, data_dir: str | os.PathLike, store: Store, snapshot_interval: float = 300.0) -> None:
        self.data_dir = os.fspath(data_dir)
        self.store = store
        self.snapshot_interval = snapshot_interval
        self.snapshot_path = os.path.join(self.data_dir, SNAPSHOT_FILE)
        self.snapshots_written = 0
        self._journal: Journal | None = None
        self._lock_fd: int | None = None
        self._snapshot_version = 0
        self._checkpoint_lock = asyncio.Lock()
        self._periodic: asyncio.Task[None] | None = None

    @property
    def journal(self) -> Journal:
        """The open journal."""
        if self._journal is None:
            raise RuntimeError("durability not started")
        return self._journal

    def journal_files(self) -> list[str]:
        """Journal files of the data directory, oldest first."""
        numbered = []
        for name in os.listdir(self.data_dir):
            match = _JOURNAL_NAME.match(name)
            if match:
                numbered.append((int(match.group(1)), os.path.join(self.data_dir, name)))
        return [path for _, path in sorted(numbered)]

    def _journal_path(self, number: int) -> str:
        return os.path.join(self.data_dir, f"journal-{number:08d}.bin")

    def recover(self) -> None:
        """Lock the directory, load the snapshot, then replay journal records it does not cover."""
        os.makedirs(self.data_dir, exist_ok=True)
        self._lock_directory()
        try:
            self._recover()
        except BaseException:
            self._unlock_directory()
            raise

    def _recover(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.snapshot_path + ".tmp")
        covered = 0
        if os.path.exists(self.snapshot_path):
            covered, effects = read_snapshot(self.snapshot_path)
            for effect in effects:
                self.store.apply(effect)
        self._snapshot_version = self.store.version
        files = self.journal_files()
        last, replayed = covered, 0
        for index, path in enumerate(files):
            for sequence, effects in read_journal(path, last=index == len(files) - 1):
                last = max(last, sequence)
                if sequence <= covered:
                    continue  # already in the snapshot (crash before old files were deleted)
                for effect in effects:
                    self.store.apply(effect)
                replayed += 1
        if replayed:
            self._snapshot_version = -1  # the next checkpoint compacts what was replayed
        logger.info(
            "recovered %s: snapshot up to record %d, %d journal records replayed", self.data_dir, covered, replayed
        )
        path = files[-1] if files else self._journal_path(1)
        self._journal = Journal(path, last)
        if not files:
            fsync_directory(self.data_dir)

    def _lock_directory(self) -> None:
        if fcntl is None:
            return
        fd = os.open(os.path.join(self.data_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirectoryInUseError(f"{self.data_dir} is in use by another embedded MongoDB") from None
        self._lock_fd = fd

    def _unlock_directory(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def start(self) -> None:
        """Start the journal flusher and the periodic snapshot task."""
        self.journal.start()
        if self.snapshot_interval > 0:
            self._periodic = asyncio.create_task(self._snapshot_periodically(), name="embedded-mongo-snapshots")

    def record(self, effects: list[dict]) -> int:
        """Append effects to the journal; returns the sequence to wait for."""
        return self.journal.append(effects)

    async def wait_durable(self, sequence: int | None = None) -> None:
        """Wait until the given record (default: everything appended so far) is on disk."""
        journal = self.journal
        await journal.wait_durable(journal.last_sequence if sequence is None else sequence)

    async def checkpoint(self) -> bool:
        """Write a snapshot and drop the journal files it covers, if anything changed."""
        async with self._checkpoint_lock:
            if self.store.version == self._snapshot_version:
                return False
            journal = self.journal
            async with journal.paused():
                # No await between these lines: the image and the sequence must match.
                images = self.store.capture()
                sequence = journal.last_sequence
                version = self.store.version
                old_files = self.journal_files()
                number = int(_JOURNAL_NAME.match(os.path.basename(journal.path)).group(1))
                await journal.rotate(self._journal_path(number + 1))
            # Writes go on into the new journal file while the snapshot is written.
            await asyncio.to_thread(write_snapshot, self.snapshot_path, images, sequence)
            await asyncio.to_thread(self._delete, old_files)
            self._snapshot_version = version
            self.snapshots_written += 1
            logger.info("snapshot written to %s (journal record %d)", self.snapshot_path, sequence)
            return True

    def _delete(self, paths: list[str]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        fsync_directory(self.data_dir)

    async def _snapshot_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval)
            try:
                await self.checkpoint()
            except Exception:  # keep serving; the journal still has every write
                logger.exception("periodic snapshot failed")

    async def close(self) -> None:
        """Stop the periodic task, write a final snapshot, close the journal, unlock."""
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
            self._periodic = None
        if self._journal is None:
            return
        try:
            await self.checkpoint()
        finally:
            await self._journal.close()
            self._journal = None
            self._unlock_directory()
