"""Work only one gateway process may do at a time (long polling, routing rounds, the relay sweep), held through
a lease in MongoDB: the holder renews it; when the holder stops or dies, another process takes over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from pymongo.errors import PyMongoError

from gateway.model import utcnow
from gateway.storage.mongo import Storage
from gateway.tasks import stop

logger = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


async def _forever() -> None:
    await asyncio.Event().wait()


def _process_lease(holder: str) -> str:
    return f"process:{holder}"


def process_name() -> str:
    """This process among all gateway processes: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leases:
    """Runs work while this process holds its lease; waits to take over otherwise."""

    def __init__(self, store: Storage, seconds: float, holder: str | None = None) -> None:
        self.store = store
        self.seconds = seconds
        self.holder = holder or process_name()
        self.held: set[str] = set()

    async def keep_alive(self) -> None:
        """Hold this process's own lease while it runs (what others check with `alive`), until cancelled."""
        await self.run(_process_lease(self.holder), _forever)

    async def alive(self, holders: set[str]) -> set[str]:
        """Which of these processes are running (hold their own lease)."""
        held = await self.store.leases.held([_process_lease(h) for h in holders], utcnow())
        return {h for h in holders if _process_lease(h) in held}

    async def run(self, name: str, work: Work) -> None:
        """Run `work` whenever this process holds lease `name`, until cancelled (then the lease is given up).

        The lease is renewed three times per term; a renewal that fails (storage away for a whole term, or the
        lease taken over meanwhile) stops the work here, since another process may be doing it now.
        """
        try:
            while True:
                if await self._take(name):  # None (storage trouble) waits like False
                    logger.info("this process (%s) now does %s", self.holder, name)
                    self.held.add(name)
                    await self._hold(name, work)
                    self.held.discard(name)
                await asyncio.sleep(self.seconds / 3)
        finally:
            self.held.discard(name)
            with contextlib.suppress(PyMongoError, asyncio.CancelledError):
                await asyncio.shield(self.store.leases.give_up(name, self.holder))

    async def _hold(self, name: str, work: Work) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        task = asyncio.ensure_future(work())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.seconds / 3)
                if done:
                    if not task.cancelled() and task.exception() is not None:
                        logger.error("%s stopped", name, exc_info=task.exception())
                    return
                taken = await self._take(name)
                if taken:
                    renewed = loop.time()
                elif taken is False or loop.time() - renewed >= self.seconds * 0.9:
                    logger.warning("lost the lease on %s: stopping it in this process", name)
                    return
        finally:
            await stop(task)

    async def _take(self, name: str) -> bool | None:
        """Whether the lease is ours now; None when storage did not answer."""
        now = utcnow()
        try:
            return await self.store.leases.take(name, self.holder, now, now + timedelta(seconds=self.seconds))
        except PyMongoError as err:
            logger.warning("lease %s could not be taken or renewed: %s", name, err)
            return None
