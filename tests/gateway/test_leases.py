"""Work one process does at a time: held by one lease holder, taken over when it stops or dies."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from aiohttp.test_utils import TestClient

from gateway.keys import STORE
from gateway.leases import Leases
from gateway.model import utcnow


class Worker:
    """Work that records who is doing it."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.started: list[str] = []

    def of(self, who: str):
        async def work() -> None:
            self.started.append(who)
            self.running.append(who)
            try:
                await asyncio.Event().wait()
            finally:
                self.running.remove(who)

        return work


async def until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the work runs in other tasks; nothing to wait on but time
            await asyncio.sleep(0.02)


async def test_one_holder_works_and_the_other_takes_over_when_it_stops(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    # "a" renews a long lease; "b" looks often: only a lease given up lets "b" in within a second.
    a, b = Leases(store, 5.0, holder="a"), Leases(store, 0.3, holder="b")
    worker = Worker()
    first = asyncio.create_task(a.run("job", worker.of("a")))
    await until(lambda: worker.running == ["a"])
    second = asyncio.create_task(b.run("job", worker.of("b")))
    await asyncio.sleep(1.0)  # three terms: "a" keeps renewing, "b" keeps waiting
    assert worker.running == ["a"] and worker.started == ["a"]

    first.cancel()  # a stopping process gives its lease up: no need to wait for it to lapse
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await until(lambda: worker.running == ["b"], seconds=1.0)
    assert await store.leases.holder("job", utcnow()) == "b"
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
    assert worker.running == []


async def test_a_lease_whose_holder_died_is_taken_when_it_lapses(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    now = utcnow()
    assert await store.leases.take("job", "dead", now, now + timedelta(seconds=0.6))  # then it was SIGKILLed
    worker = Worker()
    survivor = asyncio.create_task(Leases(store, 0.3, holder="b").run("job", worker.of("b")))
    await asyncio.sleep(0.3)
    assert worker.running == []
    await until(lambda: worker.running == ["b"], seconds=2.0)
    survivor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await survivor


async def test_a_holder_that_lost_its_lease_stops_the_work(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    worker = Worker()
    task = asyncio.create_task(Leases(store, 0.3, holder="a").run("job", worker.of("a")))
    await until(lambda: worker.running == ["a"])
    # Another process took it over (say "a" was paused for longer than a term).
    await store.leases.collection.update_one(
        {"_id": "job"}, {"$set": {"holder": "b", "until": utcnow() + timedelta(1)}}
    )
    await until(lambda: worker.running == [], seconds=1.0)
    assert worker.started == ["a"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await store.leases.holder("job", utcnow()) == "b"  # giving up never frees someone else's lease
