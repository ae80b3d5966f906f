"""Online backup: a consistent copy of a store, taken while the engine keeps serving it."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from .storage import DB_FILE


def backup(data_dir: str | os.PathLike, dest: str | os.PathLike) -> str:
    """Copy the store in data_dir into the directory dest (created; must hold no store yet); returns its path.

    Works from any process, also while an engine serves data_dir: SQLite's online backup copies one
    read snapshot, and in WAL mode that reader does not hold writers up. The engine can start from dest.
    """
    source = os.path.join(os.fspath(data_dir), DB_FILE)
    if not os.path.exists(source):
        raise FileNotFoundError(f"no embedded MongoDB store in {os.fspath(data_dir)} (expected {source})")
    target_dir = os.fspath(dest)
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, DB_FILE)
    if os.path.exists(target):
        raise FileExistsError(f"{target_dir} already holds a store; back up into an empty directory")
    partial = target + ".partial"
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)
    src = sqlite3.connect(source, timeout=60)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: every page from a single snapshot
            dst.execute("PRAGMA journal_mode = WAL")
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
    finally:
        src.close()
    for leftover in (partial + "-wal", partial + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(leftover)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    fd = os.open(target_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target
