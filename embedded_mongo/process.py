"""The embedded engine in a child process of its own, so that it runs on another core than its user.

    async with EngineProcess("data") as engine:
        client = AsyncMongoClient(engine.uri)

The child holds the read end of a pipe as its standard input: when the parent closes it, or dies in any
way, the child finishes the work it was given, closes the store and exits. Its log lines are logged again
in the parent, under the names they were logged with. A child that dies on its own is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from .datadir import DataDirectoryInUseError

logger = logging.getLogger(__name__)

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_LISTENING = b"listening on "
# The format `python -m embedded_mongo` logs in: "date time LEVEL logger: message".
_LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_IN_USE = 2  # the exit code of `python -m embedded_mongo` when the data directory is locked
STOP_SECONDS = 30.0
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # between failed attempts to start a dead engine again


class EngineStartError(RuntimeError):
    """The engine process ended before it listened."""


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    relay: asyncio.Task[str]  # logs its stderr here; returns the last line


class EngineProcess:
    """`python -m embedded_mongo` as a child process, started, waited for and stopped by its parent.

    A child that dies on its own is started again on the same port, so that clients reconnect to it as to a
    restarted MongoDB; what it acknowledged is on disk.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        *,
        cache_mb: int = 64,
        history_mb: int = 256,
        history_hours: float = 24.0,
        ttl_interval: float = 60.0,
    ) -> None:
        self._options = [
            "--data-dir", os.fspath(data_dir), "--cache-mb", str(cache_mb), "--history-mb", str(history_mb),
            "--history-hours", str(history_hours), "--ttl-interval", str(ttl_interval), "--until-stdin-closes",
        ]  # fmt: skip
        self._port = 0
        self._uri: str | None = None
        self._child: _Child | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        """A connection string for PyMongo (once started)."""
        if self._uri is None:
            raise RuntimeError("the engine process is not started")
        return self._uri

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._child.process.pid if self._child is not None else None

    async def start(self) -> None:
        """Start the child and wait until it listens; DataDirectoryInUseError if another engine has the data."""
        self._child = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self) -> None:
        """Ask the child to stop (end of its input), wait for it to close the store, and reap it."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        child, self._child, self._uri = self._child, None, None
        if child is None:
            return
        assert child.process.stdin is not None
        child.process.stdin.close()
        try:
            await asyncio.wait_for(child.process.wait(), STOP_SECONDS)
        except TimeoutError:
            logger.error("the embedded engine (process %d) did not stop in %.0f s: killed", child.process.pid,
                         STOP_SECONDS)  # fmt: skip
            child.process.kill()
            await child.process.wait()
        await child.relay

    async def _spawn(self) -> _Child:
        environment = dict(os.environ)
        path = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "embedded_mongo", "--port", str(self._port), *self._options,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=environment,
            # Its own session: a Ctrl-C meant for the gateway must not stop the engine under it mid-shutdown.
            start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        child = _Child(process, asyncio.create_task(_relay(process.stderr)))
        try:
            line = await process.stdout.readline()
        except BaseException:
            process.kill()
            await process.wait()
            await child.relay
            raise
        if line.startswith(_LISTENING):
            self._uri = line[len(_LISTENING) :].strip().decode()
            self._port = urlsplit(self._uri).port or 0
            return child
        code = await process.wait()
        last = await child.relay
        if code == _IN_USE:
            raise DataDirectoryInUseError(last.removeprefix("error: "))
        raise EngineStartError(f"the embedded engine exited with code {code} before it listened: {last}")

    async def _supervise(self) -> None:
        """Start the child again whenever it dies without being asked to, waiting longer after each failure."""
        while self._child is not None:
            code = await self._child.process.wait()
            await asyncio.wait([self._child.relay])  # not `await`: cancelling us must not cancel the relay
            logger.error("the embedded engine (process %d) exited with code %d: starting it again on port %d",
                         self._child.process.pid, code, self._port)  # fmt: skip
            for delay in itertools.chain(RESTART_DELAYS, itertools.repeat(RESTART_DELAYS[-1])):
                try:
                    self._child = await self._spawn()
                    break
                except (DataDirectoryInUseError, EngineStartError, OSError) as err:
                    logger.error("could not start the embedded engine again (%s): next try in %.0f s", err, delay)
                    await asyncio.sleep(delay)
            logger.warning("the embedded engine runs again (process %d)", self._child.process.pid)

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
        if line.startswith("error: "):  # its last word, raised by start() instead
            continue
        match = _LINE.match(line)
        if match is None:  # a traceback's lines
            logger.warning("%s", line)
        else:
            level, name, message = match.groups()
            logging.getLogger(name).log(logging.getLevelNamesMapping()[level], "%s", message)
    return last
