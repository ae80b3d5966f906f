"""Engine-only: persistence across restarts and SIGKILL, the data-directory lock, group commit."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from embedded_mongo import DataDirectoryInUseError, EmbeddedMongo
from embedded_mongo.storage import Storage

from .conftest import engine_only
from .processes import run_python, start_engine, stop

pytestmark = engine_only


def _client(uri: str, **options) -> AsyncMongoClient:
    return AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000, **options)


async def _write_sample(uri: str) -> None:
    client = _client(uri)
    try:
        coll = client.app.contacts
        await coll.create_index("identities.key", unique=True)
        await coll.insert_many([{"_id": i, "identities": [{"key": f"k{i}"}], "n": 0} for i in range(20)])
        await coll.update_many({"_id": {"$lt": 5}}, {"$inc": {"n": 1}})
        await coll.delete_one({"_id": 19})
        await coll.update_one({"_id": 100}, {"$set": {"n": 7}}, upsert=True)
        await client.app.create_collection("images", changeStreamPreAndPostImages={"enabled": True})
        await client.app.empty.insert_one({"x": 1})
        await client.app.empty.delete_many({})
    finally:
        await client.close()


async def _check_sample(uri: str) -> None:
    client = _client(uri)
    try:
        coll = client.app.contacts
        assert await coll.count_documents({}) == 20
        assert await coll.count_documents({"n": 1}) == 5
        assert await coll.find_one({"_id": 19}) is None
        assert await coll.find_one({"_id": 100}) == {"_id": 100, "n": 7}
        assert "identities.key_1" in await coll.index_information()
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"identities": [{"key": "k3"}]})
        assert sorted(await client.app.list_collection_names()) == ["contacts", "empty", "images"]
        options = await client.app.images.options()
        assert options == {"changeStreamPreAndPostImages": {"enabled": True}}
    finally:
        await client.close()


async def test_data_survives_close_and_reopen(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _write_sample(server.uri)
        client = _client(server.uri)
        before = (await client.admin.command("ping"))["operationTime"]
        await client.close()
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _check_sample(server.uri)
        client = _client(server.uri)
        await client.app.later.insert_one({})
        after = (await client.admin.command("ping"))["operationTime"]
        await client.close()
    assert after > before  # cluster time keeps moving forward across restarts


async def test_data_directory_is_locked(tmp_path):
    async with EmbeddedMongo(tmp_path / "db"):
        with pytest.raises(DataDirectoryInUseError, match=r"db is in use by another process"):
            await EmbeddedMongo(tmp_path / "db").start()
        code, output = await run_python(
            "from embedded_mongo.__main__ import main; import sys; sys.exit(main())",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "db"),
        )
        assert code == 2 and "is in use by another process" in output and "Traceback" not in output
    async with EmbeddedMongo(tmp_path / "db"):
        pass


async def test_temporary_store_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    server = EmbeddedMongo(None)
    async with server:
        directory = Path(server.data_dir or "")
        client = _client(server.uri)
        await client.app.c.insert_one({"x": 1})
        assert await client.app.c.count_documents({}) == 1
        await client.close()
        assert _entries(directory)  # the store lives in a private directory while it runs
    assert not _exists(directory)
    assert _entries(tmp_path) == []


def _entries(directory: Path) -> list[Path]:
    return list(directory.iterdir())


def _exists(path: Path) -> bool:
    return path.exists()


async def test_concurrent_writes_share_commits(tmp_path, monkeypatch):
    real_commit = Storage.commit
    slow = threading.Event()

    def slow_commit(self: Storage) -> None:
        if slow.is_set():
            threading.Event().wait(0.02)  # lets writers pile up behind one commit
        real_commit(self)

    monkeypatch.setattr(Storage, "commit", slow_commit)
    async with EmbeddedMongo(tmp_path / "db") as server:
        client = _client(server.uri)
        await client.app.c.insert_one({"warm": True})
        before = (await client.admin.command("serverStatus"))["embedded"]["commits"]
        slow.set()
        await asyncio.gather(*(client.app.c.insert_one({"i": i}) for i in range(200)))
        slow.clear()
        commits = (await client.admin.command("serverStatus"))["embedded"]["commits"] - before
        assert await client.app.c.count_documents({"i": {"$exists": True}}) == 200
        await client.close()
    assert 0 < commits < 100


async def test_replies_wait_for_the_commit(tmp_path, monkeypatch):
    real_commit = Storage.commit
    hold, entered = threading.Event(), threading.Event()

    def held_commit(self: Storage) -> None:
        if self.oplog.last_ts != self.oplog.committed_ts and not hold.is_set():
            entered.set()
            hold.wait(30)
        real_commit(self)

    async with EmbeddedMongo(tmp_path / "db") as server:
        writer, reader = _client(server.uri), _client(server.uri)
        await writer.app.c.insert_one({"_id": "seed"})
        await reader.app.c.find_one({})
        monkeypatch.setattr(Storage, "commit", held_commit)
        insert = asyncio.create_task(writer.app.c.insert_one({"_id": "new"}))
        assert await asyncio.to_thread(entered.wait, 30)
        read = asyncio.create_task(reader.app.c.find_one({"_id": "new"}))
        await reader.admin.command("ping")  # the event loop still answers while the engine commits
        assert not insert.done() and not read.done()
        hold.set()
        await insert
        assert await read == {"_id": "new"}
        await writer.close()
        await reader.close()


async def test_sigkill_loses_no_acknowledged_write(tmp_path):
    data_dir = tmp_path / "db"
    process, uri = await start_engine(data_dir, tmp_path / "engine.log")
    # Short timeouts: after the kill, each worker's next write fails fast instead of waiting for a server.
    clients = [
        AsyncMongoClient(
            uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300, socketTimeoutMS=5000, retryWrites=False
        )
        for _ in range(3)
    ]
    workers: list[_Worker] = []
    try:
        await clients[0].app.meta.insert_one({"_id": "untouched", "v": 1})
        await clients[0].app.work.create_index("w")
        workers = [_Worker(i, clients[i % 3].app.work) for i in range(8)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        for _ in range(6000):
            if sum(len(w.acked) for w in workers) >= 600:
                break
            assert not all(t.done() for t in tasks), "workers stopped before the kill"
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the workload made too little progress")
        await clients[1].app.work.create_index("v", name="late_index")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await asyncio.gather(*tasks)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for client in clients:
            await client.close()

    process, uri = await start_engine(data_dir, tmp_path / "engine.log")
    client = _client(uri)
    try:
        assert await client.app.meta.find_one({}) == {"_id": "untouched", "v": 1}
        assert {"w_1", "late_index"} <= set(await client.app.work.index_information())
        found = [d async for d in client.app.work.find()]
        assert len(found) == len({d["_id"] for d in found})
        for worker in workers:
            mine = {d["_id"]: d for d in found if d.get("w") == worker.number}
            assert mine in (worker.expected(False), worker.expected(True)), worker.number
            indexed = {d["_id"] async for d in client.app.work.find({"w": worker.number})}
            assert indexed == set(mine)  # the index agrees with the documents
    finally:
        await client.close()
        await stop(process)


class _Worker:
    """Runs a fixed sequence of writes on its own documents, remembering what was acknowledged."""

    def __init__(self, number: int, coll) -> None:
        self.number = number
        self.coll = coll
        self.acked: list[tuple] = []
        self.in_flight: tuple | None = None

    def ops(self):
        w = self.number
        for j in range(100_000):
            yield ("insert", f"w{w}-{j}")
            if j % 3 == 2:
                yield ("inc", f"w{w}-{j - 1}")
            if j % 5 == 4:
                yield ("delete", f"w{w}-{j - 2}")
            if j % 4 == 0:
                yield ("upsert", f"counter-{w}")

    async def run(self) -> None:
        for op in self.ops():
            self.in_flight = op
            kind, key = op
            try:
                if kind == "insert":
                    await self.coll.insert_one({"_id": key, "w": self.number, "v": 0})
                elif kind == "inc":
                    await self.coll.update_one({"_id": key}, {"$inc": {"v": 1}})
                elif kind == "delete":
                    await self.coll.delete_one({"_id": key})
                else:
                    await self.coll.update_one(
                        {"_id": key}, {"$inc": {"n": 1}, "$setOnInsert": {"w": self.number}}, upsert=True
                    )
            except PyMongoError:
                return
            self.acked.append(op)
            self.in_flight = None

    def expected(self, include_in_flight: bool) -> dict:
        state: dict = {}
        ops = self.acked + ([self.in_flight] if include_in_flight and self.in_flight else [])
        for kind, key in ops:
            if kind == "insert":
                state[key] = {"_id": key, "w": self.number, "v": 0}
            elif kind == "inc" and key in state:
                state[key] = {**state[key], "v": state[key]["v"] + 1}
            elif kind == "delete":
                state.pop(key, None)
            elif kind == "upsert":
                old = state.get(key, {"_id": key, "n": 0, "w": self.number})
                state[key] = {**old, "n": old["n"] + 1}
        return state
