"""The supervisors' mirror's own queue: its posts wait (for the group's flood limit, a 429) in the background,
one after another, and never hold up the events that deliver to operators."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from gateway.tasks import stop

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
# On shutdown the queue gets this long to finish; what is left (a long flood wait) is dropped, and said.
SHUTDOWN_GRACE = 3.0


class MirrorQueue:
    """Runs jobs in the order they were put, one at a time, in a worker task it owns."""

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def put(self, job: Job) -> None:
        """Queue a job behind the others; never waits."""
        if self._closed:
            logger.info("the mirror is stopping: a post to the supervisors' chat was dropped")
            return
        self._jobs.append(job)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="mirror-queue")

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        return self._worker is None

    async def drain(self) -> None:
        """Wait until every queued job has run."""
        while self._worker is not None:
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        """Let queued jobs finish for a moment, then cancel the rest."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), SHUTDOWN_GRACE)
        if self._worker is not None:
            logger.warning("stopping with %d posts to the supervisors' chat not made", len(self._jobs))
            await stop(self._worker)

    async def _work(self) -> None:
        try:
            while self._jobs:
                job = self._jobs[0]
                try:
                    await job()
                except Exception:  # one failed post must not stop the mirror
                    logger.exception("mirroring into the supervisors' chat failed")
                self._jobs.popleft()
        finally:
            self._worker = None
