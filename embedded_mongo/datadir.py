"""The data directory: its files and the lock that keeps a second process out."""

from __future__ import annotations

import os

try:
    import fcntl
except ImportError:  # not on POSIX: no protection against a second process
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "LOCK"


class DataDirectoryInUseError(RuntimeError):
    """Another process (or another engine in this one) has the data directory open."""


class DirectoryLock:
    """An exclusive lock on a data directory, held as long as an engine serves it."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise DataDirectoryInUseError saying who has it."""
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise DataDirectoryInUseError(
                f"data directory {self.directory} is in use by another process{who}: stop the other embedded "
                f"MongoDB or choose another directory (lock file {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
