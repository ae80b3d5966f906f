"""Engine-only: change history across restarts, trimming, and clients in other processes."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from embedded_mongo import EmbeddedMongo, History
from embedded_mongo.storage import Storage

from .conftest import engine_only
from .processes import free_port, run_python, start_engine, stop
from .test_changestreams import _events, _next

pytestmark = engine_only


async def test_a_trimmed_resume_point_is_history_lost(tmp_path):
    history = History(max_bytes=20_000, max_age_seconds=None, trim_interval=0.02)
    async with EmbeddedMongo(tmp_path / "db", history=history) as server:
        client = AsyncMongoClient(server.uri)
        coll = client.app.c
        async with await coll.watch(max_await_time_ms=20) as stream:
            await coll.insert_one({"_id": "first"})
            await _next(stream)
            token = stream.resume_token
        behind = await coll.watch(resume_after=token, max_await_time_ms=20)
        lost = None
        for batch in range(200):
            await coll.insert_many([{"_id": f"{batch}-{i}", "pad": "x" * 200} for i in range(20)])
            try:
                await (await coll.watch(resume_after=token)).close()
            except OperationFailure as error:
                lost = error
                break
            await asyncio.sleep(0.02)
        assert lost is not None, "the history was never trimmed"
        assert lost.code == 286 and lost.has_error_label("NonResumableChangeStreamError")
        with pytest.raises(OperationFailure) as error:
            await _next(behind)
        assert error.value.code == 286
        async with await coll.watch(max_await_time_ms=20) as fresh:  # a new stream starts from now
            await coll.insert_one({"_id": "after"})
            assert (await _next(fresh))["documentKey"] == {"_id": "after"}
        await client.close()


async def test_streams_resume_across_a_restart_of_the_engine(tmp_path):
    port = free_port()
    process, uri = await start_engine(tmp_path / "db", tmp_path / "engine.log", port=port)
    client = AsyncMongoClient(uri, serverSelectionTimeoutMS=20_000)
    try:
        coll = client.app.c
        stream = await coll.watch(max_await_time_ms=50)
        await coll.insert_one({"_id": 1})
        assert (await _next(stream))["documentKey"] == {"_id": 1}
        token = stream.resume_token
        await coll.insert_one({"_id": 2})  # written, not yet read by the stream
        await stop(process)
        process, _ = await start_engine(tmp_path / "db", tmp_path / "engine.log", port=port)
        await coll.insert_one({"_id": 3})
        # The same stream resumes by itself (PyMongo reconnects with its last resume token)...
        assert [e["documentKey"]["_id"] for e in await _events(stream, 2)] == [2, 3]
        await stream.close()
        # ...and a new one resumes from a token kept from before the restart.
        async with await coll.watch(resume_after=token, max_await_time_ms=50) as resumed:
            assert [e["documentKey"]["_id"] for e in await _events(resumed, 2)] == [2, 3]
    finally:
        await client.close()
        await stop(process)


_WATCHER = """
import asyncio, json, sys
from pymongo import AsyncMongoClient

async def main(uri, expected):
    client = AsyncMongoClient(uri)
    async with await client.app.inbox.watch([{"$match": {"operationType": "insert"}}], max_await_time_ms=100) as stream:
        print("watching", flush=True)
        seen = []
        while len(seen) < expected:
            event = await stream.try_next()
            if event is not None:
                seen.append(event["fullDocument"]["n"])
    print(json.dumps(seen), flush=True)
    await client.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""

_WRITER = """
import asyncio, sys
from pymongo import AsyncMongoClient

async def main(uri, count):
    client = AsyncMongoClient(uri)
    for n in range(count):
        await client.app.inbox.insert_one({"n": n})
    await client.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_one_engine_serves_a_writer_and_a_watcher_in_other_processes(tmp_path):
    process, uri = await start_engine(tmp_path / "db", tmp_path / "engine.log")
    try:
        watcher = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WATCHER, uri, "50", stdout=asyncio.subprocess.PIPE
        )
        assert watcher.stdout is not None
        assert (await asyncio.wait_for(watcher.stdout.readline(), 60)).strip() == b"watching"
        code, output = await run_python(_WRITER, uri, "50")
        assert code == 0, output
        result, _ = await asyncio.wait_for(watcher.communicate(), 60)
        assert json.loads(result) == list(range(50))
    finally:
        await stop(process)


def test_history_is_trimmed_by_age_and_by_size(tmp_path):
    storage = Storage(
        str(tmp_path / "store.sqlite3"), durable=False, history=History(max_bytes=10**9, max_age_seconds=3600)
    )
    try:
        oplog = storage.oplog
        storage.begin()
        for n in range(10):
            oplog.append("app", "c", {"o": "d", "k": {"_id": n}})
        storage.commit()
        first = oplog.first_ts()
        assert first is not None
        storage.begin()
        assert oplog.trim(now=time.time()) == 0  # nothing is an hour old yet
        assert oplog.trim(now=time.time() + 7200) == 10
        storage.commit()
        assert oplog.first_ts() is None and oplog.trimmed_upto >= first
        oplog.history = History(max_bytes=200, max_age_seconds=None)
        storage.begin()
        for n in range(20):
            oplog.append("app", "c", {"o": "d", "k": {"_id": n}, "pad": "x" * 40})
        dropped = oplog.trim()
        storage.commit()
        kept = storage.conn.execute("SELECT SUM(length(entry)) FROM oplog").fetchone()[0]
        assert dropped > 0 and kept <= 200
    finally:
        storage.close()
