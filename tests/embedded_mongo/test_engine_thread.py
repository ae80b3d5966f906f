"""Engine-only: the engine thread never holds up the event loop, and cursors stream in batches."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from embedded_mongo import EmbeddedMongo, sorting, worker
from embedded_mongo.storage import Storage

from .conftest import engine_only

pytestmark = engine_only


async def test_a_long_command_does_not_block_the_event_loop(tmp_path, monkeypatch):
    real_scan = Storage.scan_documents
    blocking, entered, release = threading.Event(), threading.Event(), threading.Event()

    def slow_scan(self, *args, **kwargs):
        if blocking.is_set():
            entered.set()
            release.wait(30)  # stands for a scan of millions of documents
        return real_scan(self, *args, **kwargs)

    monkeypatch.setattr(Storage, "scan_documents", slow_scan)
    async with EmbeddedMongo(tmp_path / "db") as server:
        scanner, other = AsyncMongoClient(server.uri), AsyncMongoClient(server.uri)
        await scanner.app.big.insert_many([{"n": i} for i in range(100)])
        await other.app.small.insert_one({"_id": 1})
        blocking.set()
        scan = asyncio.create_task(scanner.app.big.count_documents({"n": {"$gte": 0}}))
        assert await asyncio.to_thread(entered.wait, 30)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while not release.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        assert (await other.admin.command("ping"))["ok"] == 1.0
        assert (await other.admin.command("hello"))["isWritablePrimary"] is True
        queued = asyncio.create_task(other.app.small.find_one({"_id": 1}))
        await asyncio.sleep(0.05)
        assert not scan.done() and not queued.done()  # data commands wait for the one engine thread...
        assert ticks > 0  # ...while the event loop keeps running everything else
        blocking.clear()
        release.set()
        await ticker
        assert await scan == 100
        assert await queued == {"_id": 1}
        await scanner.close()
        await other.close()


async def _documents_read(client: AsyncMongoClient) -> int:
    return (await client.admin.command("serverStatus"))["embedded"]["documentsRead"]


async def test_cursors_read_one_batch_at_a_time(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        client = AsyncMongoClient(server.uri)
        coll = client.app.many
        await coll.create_index("n")
        await coll.insert_many([{"_id": i, "n": i % 1000, "pad": "x" * 100} for i in range(5000)])
        for cursor in (coll.find().batch_size(20), coll.find({"n": {"$gte": 0}}, sort=[("n", 1)]).batch_size(20)):
            before = await _documents_read(client)
            await cursor.next()
            assert await _documents_read(client) - before < 500  # not the 5000 the query will return
            seen = 1 + len([d async for d in cursor])
            assert seen == 5000
        assert (await client.admin.command("serverStatus"))["embedded"]["openCursors"] == 0
        await client.close()


async def test_a_large_in_memory_sort_spills_to_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(sorting, "MEMORY_BYTES", 20_000)
    async with EmbeddedMongo(tmp_path / "db") as server:
        client = AsyncMongoClient(server.uri)
        coll = client.app.unsorted
        await coll.insert_many([{"_id": i, "k": (i * 7919) % 1000, "pad": "y" * 50} for i in range(1000)])
        ordered = [d["_id"] async for d in coll.find({}, sort=[("k", -1), ("_id", 1)]).batch_size(50)]
        assert ordered == sorted(range(1000), key=lambda i: (-((i * 7919) % 1000), i))
        await client.close()


async def test_a_cursor_over_a_dropped_collection_ends_with_an_error(tmp_path):
    async with EmbeddedMongo(None) as server:
        client = AsyncMongoClient(server.uri)
        await client.app.gone.insert_many([{"_id": i} for i in range(10)])
        cursor = client.app.gone.find().batch_size(2)
        assert (await cursor.next())["_id"] == 0
        await client.app.gone.drop()
        with pytest.raises(OperationFailure) as error:
            await cursor.to_list()
        assert error.value.code == 175
        await client.app.other.insert_one({"_id": "still fine"})
        assert await client.app.other.find_one() == {"_id": "still fine"}
        await client.close()


async def test_a_slow_command_is_logged_with_its_shape_not_its_values(tmp_path, monkeypatch, caplog):
    def slow() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith(("slow command", "slow commit"))]

    async with EmbeddedMongo(tmp_path / "db") as server:
        client = AsyncMongoClient(server.uri)
        await client.app.people.insert_one({"name": "Ann Secret"})
        assert slow() == []  # quick, under the threshold
        monkeypatch.setattr(worker, "SLOW_SECONDS", 0.0)  # from now on, everything is slow
        assert await client.app.people.find_one({"name": "Ann Secret"}) is not None
        await client.close()
    found = [m for m in slow() if m.startswith("slow command: find on app.people took ")]
    assert len(found) == 1 and "{'filter': {'name': '?'}}" in found[0]
    assert any(m.startswith("slow commit: ") for m in slow())
    assert not any("Secret" in m for m in slow())
