"""The embedded engine in a child process of its own, so that it runs on another core than its user.

    async with EngineProcess("data") as engine:
        client = AsyncMongoClient(engine.uri)

The child holds the read end of a pipe as its standard input: when the parent closes it, or dies in any
way, the child finishes the work it was given, closes the store and exits. Its log lines are logged again
in the parent, under the names they were logged with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from types import TracebackType

from .datadir import DataDirectoryInUseError

logger = logging.getLogger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_LISTENING = b"listening on "
_LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_IN_USE = 2  # the exit code of `python -m embedded_mongo` when the data directory is locked
STOP_SECONDS = 30.0


class EngineStartError(RuntimeError):
    """The engine process ended before it listened."""


class EngineProcess:
    """`python -m embedded_mongo` as a child process, started, waited for and stopped by its parent."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        *,
        cache_mb: int = 64,
        history_mb: int = 256,
        history_hours: float = 24.0,
        ttl_interval: float = 60.0,
    ) -> None:
        self._command = [
            sys.executable, "-m", "embedded_mongo", "--port", "0", "--data-dir", os.fspath(data_dir),
            "--cache-mb", str(cache_mb), "--history-mb", str(history_mb), "--history-hours", str(history_hours),
            "--ttl-interval", str(ttl_interval), "--until-stdin-closes",
        ]  # fmt: skip
        self._process: asyncio.subprocess.Process | None = None
        self._relay: asyncio.Task[str] | None = None
        self._uri: str | None = None

    @property
    def uri(self) -> str:
        """A connection string for PyMongo (once started)."""
        if self._uri is None:
            raise RuntimeError("the engine process is not started")
        return self._uri

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child and wait until it listens; DataDirectoryInUseError if another engine has the data."""
        environment = dict(os.environ)
        path = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
        self._process = process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            # Its own session: a Ctrl-C meant for the gateway must not stop the engine under it mid-shutdown.
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        self._relay = asyncio.create_task(self._watch(process))
        try:
            line = await process.stdout.readline()
        except BaseException:
            await self.close()
            raise
        if line.startswith(_LISTENING):
            self._uri = line[len(_LISTENING) :].strip().decode()
            return
        code = await process.wait()
        last = await self._relay
        self._process = self._relay = None
        if code == _IN_USE:
            raise DataDirectoryInUseError(last.removeprefix("error: "))
        raise EngineStartError(f"the embedded engine exited with code {code} before it listened: {last}")

    async def close(self) -> None:
        """Ask the child to stop (end of its input), wait for it to close the store, and reap it."""
        process, self._process, self._uri = self._process, None, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            logger.error(
                "the embedded engine (process %d) did not stop within %.0f s: killed", process.pid, STOP_SECONDS
            )
            process.kill()
            await process.wait()
        finally:
            if self._relay is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._relay
                self._relay = None

    async def _watch(self, process: asyncio.subprocess.Process) -> str:
        assert process.stderr is not None
        last = await _relay(process.stderr)
        code = await process.wait()
        if process is self._process and self._uri is not None:  # it listened, and nobody asked it to stop
            logger.error("the embedded engine (process %d) exited with code %d: %s", process.pid, code, last)
        return last

    async def __aenter__(self) -> EngineProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _relay(stream: asyncio.StreamReader) -> str:
    """Log the child's log lines again here until it closes its end; returns the last line."""
    last = ""
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if not line:
            continue
        last = line
        match = _LINE.match(line)
        if line.startswith("error: "):  # its last word, raised by start() instead
            continue
        if match is None:  # a traceback's lines
            logger.warning("%s", line)
        else:
            level, name, message = match.groups()
            logging.getLogger(name).log(logging.getLevelNamesMapping()[level], "%s", message)
    return last
