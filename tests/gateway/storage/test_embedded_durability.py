"""Engine-only tests: persistence, crash recovery, torn journals and group commit."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from gateway.storage.embedded import EmbeddedMongo
from gateway.storage.engine.durability import SNAPSHOT_FILE, DataDirectoryInUseError
from gateway.storage.engine.journal import CorruptFileError, Journal

from .conftest import engine_only

pytestmark = engine_only

REPO_ROOT = Path(__file__).resolve().parents[3]


async def _client(server: EmbeddedMongo) -> AsyncMongoClient:
    return AsyncMongoClient(server.uri, tz_aware=True, serverSelectionTimeoutMS=5000)


def _crash_copy(source: Path, target: Path) -> None:
    """The files a crash at this instant would leave behind."""
    shutil.copytree(source, target)


async def _write_sample(server: EmbeddedMongo) -> None:
    client = await _client(server)
    try:
        coll = client.app.contacts
        await coll.create_index("identities.key", unique=True)
        await coll.insert_many([{"_id": i, "identities": [{"key": f"k{i}"}], "n": 0} for i in range(20)])
        await coll.update_many({"_id": {"$lt": 5}}, {"$inc": {"n": 1}})
        await coll.delete_one({"_id": 19})
        await coll.update_one({"_id": 100}, {"$set": {"n": 7}}, upsert=True)
        await client.app.empty.insert_one({"x": 1})
        await client.app.empty.delete_many({})
    finally:
        await client.close()


async def _check_sample(server: EmbeddedMongo) -> None:
    client = await _client(server)
    try:
        coll = client.app.contacts
        assert await coll.count_documents({}) == 20
        assert await coll.count_documents({"n": 1}) == 5
        assert await coll.find_one({"_id": 19}) is None
        assert await coll.find_one({"_id": 100}) == {"_id": 100, "n": 7}
        assert "identities.key_1" in await coll.index_information()
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"identities": [{"key": "k3"}]})
        assert sorted(await client.app.list_collection_names()) == ["contacts", "empty"]
    finally:
        await client.close()


def _journal(server: EmbeddedMongo, data_dir: Path) -> Path:
    """The current journal file of server, as found under data_dir (e.g. a crash copy)."""
    return data_dir / Path(server.durability.journal.path).name


async def test_data_survives_close_and_reopen(tmp_path):
    data = tmp_path / "db"
    async with EmbeddedMongo(data) as server:
        await _write_sample(server)
        durability = server.durability
    assert (data / SNAPSHOT_FILE).exists()
    journals = [Path(p) for p in durability.journal_files()]
    assert len(journals) == 1 and journals[0].stat().st_size == 0
    async with EmbeddedMongo(data) as server:
        await _check_sample(server)


async def test_data_directory_is_locked(tmp_path):
    async with EmbeddedMongo(tmp_path / "db"):
        with pytest.raises(DataDirectoryInUseError):
            await EmbeddedMongo(tmp_path / "db").start()
    async with EmbeddedMongo(tmp_path / "db"):
        pass


async def test_data_survives_journal_only_restart(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _write_sample(server)
        _crash_copy(tmp_path / "db", tmp_path / "crashed")
    assert not (tmp_path / "crashed" / SNAPSHOT_FILE).exists()
    async with EmbeddedMongo(tmp_path / "crashed") as server:
        await _check_sample(server)
    assert (tmp_path / "crashed" / SNAPSHOT_FILE).exists()  # replayed records got compacted
    async with EmbeddedMongo(tmp_path / "crashed") as server:
        await _check_sample(server)


async def test_snapshot_plus_journal_recovery(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _write_sample(server)
        assert await server.durability.checkpoint()
        assert not await server.durability.checkpoint()  # nothing changed since
        client = await _client(server)
        await client.app.contacts.update_one({"_id": 0}, {"$set": {"after": True}})
        await client.close()
        _crash_copy(tmp_path / "db", tmp_path / "crashed")
    async with EmbeddedMongo(tmp_path / "crashed") as server:
        await _check_sample(server)
        client = await _client(server)
        assert (await client.app.contacts.find_one({"_id": 0}))["after"] is True
        await client.close()


async def test_crash_between_snapshot_and_journal_deletion(tmp_path):
    data = tmp_path / "db"
    async with EmbeddedMongo(data) as server:
        client = await _client(server)
        await client.app.c.insert_one({"_id": "gone", "v": 1})
        await client.app.c.delete_one({"_id": "gone"})
        await client.app.c.insert_one({"_id": "kept", "v": 1})
        stale = _journal(server, data)
        stale_bytes = stale.read_bytes()
        await server.durability.checkpoint()
        assert not stale.exists()
        await client.app.c.update_one({"_id": "kept"}, {"$inc": {"v": 1}})
        await client.close()
        _crash_copy(data, tmp_path / "crashed")
    # The old journal file (already covered by the snapshot) was not deleted yet.
    (tmp_path / "crashed" / stale.name).write_bytes(stale_bytes)
    async with EmbeddedMongo(tmp_path / "crashed") as server:
        client = await _client(server)
        assert [d async for d in client.app.c.find()] == [{"_id": "kept", "v": 2}]
        await client.close()


async def test_writes_continue_while_a_snapshot_is_written(tmp_path, monkeypatch):
    import threading

    from gateway.storage.engine import durability as durability_module

    release = threading.Event()
    real_write = durability_module.write_snapshot

    def blocked_write(*args):
        assert release.wait(60), "test never released the snapshot writer"
        real_write(*args)

    monkeypatch.setattr(durability_module, "write_snapshot", blocked_write)
    async with EmbeddedMongo(tmp_path / "db") as server:
        client = await _client(server)
        await client.app.c.insert_one({"_id": "before"})
        checkpoint = asyncio.create_task(server.durability.checkpoint())
        try:
            await asyncio.sleep(0)
            # Acknowledged (durable) while the snapshot writer is still blocked.
            await asyncio.wait_for(client.app.c.insert_one({"_id": "during"}), 30)
            assert not checkpoint.done()
            _crash_copy(tmp_path / "db", tmp_path / "crashed")
        finally:
            release.set()
            await checkpoint
        await client.close()
    monkeypatch.setattr(durability_module, "write_snapshot", real_write)
    async with EmbeddedMongo(tmp_path / "crashed") as server:
        client = await _client(server)
        assert sorted(await client.app.c.distinct("_id")) == ["before", "during"]
        await client.close()
    async with EmbeddedMongo(tmp_path / "db") as server:
        client = await _client(server)
        assert sorted(await client.app.c.distinct("_id")) == ["before", "during"]
        await client.close()


async def test_torn_last_journal_record_is_ignored(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _write_sample(server)
        journal = _journal(server, tmp_path / "db")
        size_before = journal.stat().st_size
        client = await _client(server)
        await client.app.contacts.insert_one({"_id": "last", "identities": [{"key": "last"}]})
        await client.close()
        last_record = journal.read_bytes()[size_before:]
        for name, tail in [
            ("half", last_record[: len(last_record) // 2]),
            ("garbage", b"\xde\xad\xbe\xef" * 5),
            ("short", b"\x07\x00"),
            ("zeros", bytes(64)),
        ]:
            crashed = tmp_path / name
            _crash_copy(tmp_path / "db", crashed)
            with open(crashed / journal.name, "r+b") as handle:
                handle.truncate(size_before)
                handle.seek(0, os.SEEK_END)
                handle.write(tail)
    for name in ("half", "garbage", "short", "zeros"):
        async with EmbeddedMongo(tmp_path / name) as server:
            await _check_sample(server)
            client = await _client(server)
            assert await client.app.contacts.find_one({"_id": "last"}) is None
            await client.app.contacts.insert_one({"_id": "after-recovery", "identities": [{"key": "after"}]})
            await client.close()
            assert (tmp_path / name / journal.name).stat().st_size > size_before
        async with EmbeddedMongo(tmp_path / name) as server:
            client = await _client(server)
            assert await client.app.contacts.find_one({"_id": "after-recovery"}) is not None
            await client.close()


async def test_corruption_inside_the_journal_is_an_error(tmp_path):
    async with EmbeddedMongo(tmp_path / "db") as server:
        await _write_sample(server)
        _crash_copy(tmp_path / "db", tmp_path / "crashed")
        journal = _journal(server, tmp_path / "crashed")
    assert journal.stat().st_size > 100
    data = bytearray(journal.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload
    journal.write_bytes(bytes(data))
    server = EmbeddedMongo(tmp_path / "crashed")
    with pytest.raises(CorruptFileError, match=rf"{journal.name}.*offset 0"):
        await server.start()


async def test_in_memory_server_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with EmbeddedMongo(None) as server:
        client = await _client(server)
        await client.app.c.insert_one({"x": 1})
        assert await client.app.c.count_documents({}) == 1
        await client.close()
    assert list(tmp_path.iterdir()) == []


async def test_journal_group_commit_batches_concurrent_appends(tmp_path):
    journal = Journal(str(tmp_path / "journal.bin"), last_sequence=0)
    journal.start()

    async def write(i: int) -> None:
        await journal.wait_durable(journal.append([{"o": "del", "db": "d", "c": "c", "id": i}]))

    await asyncio.gather(*(write(i) for i in range(200)))
    assert journal.records_written == 200
    assert journal.fsync_count < 200
    await journal.close()


async def test_group_commit_over_the_wire(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.02)  # makes concurrent writers pile up behind one fsync
        real_fsync(fd)

    async with EmbeddedMongo(tmp_path / "db") as server:
        client = await _client(server)
        await asyncio.gather(*(client.admin.command("ping") for _ in range(50)))
        journal = server.durability.journal
        before = journal.fsync_count
        monkeypatch.setattr(os, "fsync", slow_fsync)
        await asyncio.gather(*(client.app.c.insert_one({"i": i}) for i in range(200)))
        fsyncs = journal.fsync_count - before
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert await client.app.c.count_documents({}) == 200
        await client.close()
    assert 0 < fsyncs < 200


# -- SIGKILL -----------------------------------------------------------------------------------


async def _start_process(data_dir: Path, log_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    log = open(log_path, "wb")  # the child keeps its own descriptor
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.storage.embedded",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--snapshot-interval",
            "0.05",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(REPO_ROOT),
        )
    finally:
        log.close()
    for _ in range(600):
        match = re.search(r"listening on (mongodb://\S+)", log_path.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    process.kill()
    await process.wait()
    raise AssertionError(f"server did not start:\n{log_path.read_text(errors='replace')}")


class _Worker:
    """Runs a fixed sequence of writes on its own documents, remembering what was acked."""

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


async def test_sigkill_loses_no_acknowledged_write(tmp_path):
    data_dir = tmp_path / "db"
    process, uri = await _start_process(data_dir, tmp_path / "first.log")
    clients = [
        AsyncMongoClient(uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, socketTimeoutMS=5000)
        for _ in range(3)
    ]
    workers = []
    try:
        await clients[0].app.meta.insert_one({"_id": "untouched", "v": 1})
        await clients[0].app.work.create_index("w")
        workers = [_Worker(i, clients[i % 3].app.work) for i in range(8)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        for _ in range(6000):
            if sum(len(w.acked) for w in workers) >= 1500:
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

    process, uri = await _start_process(data_dir, tmp_path / "second.log")
    client = AsyncMongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        assert await client.app.meta.find_one({}) == {"_id": "untouched", "v": 1}
        assert {"w_1", "late_index"} <= set(await client.app.work.index_information())
        found = [d async for d in client.app.work.find()]
        assert len(found) == len({d["_id"] for d in found})
        for worker in workers:
            mine = {d["_id"]: d for d in found if d.get("w") == worker.number}
            assert mine in (worker.expected(False), worker.expected(True)), worker.number
        assert all(d.get("w") in range(8) for d in found)
    finally:
        await client.close()
        process.terminate()
        await process.wait()
