"""Background tasks are stopped for good, even one that swallows a cancellation."""

from __future__ import annotations

import asyncio

from gateway.tasks import stop


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what asyncio.wait_for in Python 3.11 can do when its timeout meets the cancel

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(30):  # a bound, not a timing: without the second cancel this waits forever
        await stop(task)
    assert task.cancelled() and swallowed == 1


async def test_stopping_a_task_that_failed_or_finished_is_quiet() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def finishes() -> int:
        return 1

    failed, finished = asyncio.create_task(fails()), asyncio.create_task(finishes())
    await asyncio.sleep(0)
    await stop(failed, finished)  # nothing raised, nothing left unretrieved
    assert failed.done() and finished.result() == 1
