"""Background tasks stopped for good."""

from __future__ import annotations

import asyncio
from typing import Any

# How long a cancelled task may take to end before it is cancelled again.
AGAIN_SECONDS = 1.0


async def stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the tasks and wait until each has ended, whatever it raised.

    A task can swallow a cancellation (Python 3.11's asyncio.wait_for does when its timeout and the cancellation
    meet; so can a driver call cut short) and loop on: such a task is cancelled again, so that shutdown never
    waits forever.
    """
    for task in tasks:
        task.cancel()
    while pending := [task for task in tasks if not task.done()]:
        _, still = await asyncio.wait(pending, timeout=AGAIN_SECONDS)
        for task in still:
            task.cancel()
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the caller decided to stop it, whatever became of it
