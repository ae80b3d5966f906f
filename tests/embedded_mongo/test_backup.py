"""Engine-only: an online backup, taken from another process while writes go on, is consistent."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import AsyncMongoClient

from embedded_mongo import EmbeddedMongo, backup

from .conftest import engine_only
from .processes import run_python, start_engine, stop

pytestmark = engine_only

_BACKUP = "import sys\nfrom embedded_mongo import backup\nbackup(sys.argv[1], sys.argv[2])\nprint('done')"


async def test_backup_while_writing(tmp_path):
    process, uri = await start_engine(tmp_path / "db", tmp_path / "engine.log")
    client = AsyncMongoClient(uri)
    written = 0
    stop_writing = asyncio.Event()
    milestones: dict[int, asyncio.Event] = {50: asyncio.Event()}

    async def write() -> None:
        nonlocal written
        await client.app.log.create_index("n")
        while not stop_writing.is_set():
            # Two collections written in order: a consistent copy never has a counter ahead of the log.
            await client.app.log.insert_one({"_id": written, "n": written})
            await client.app.counter.update_one({"_id": "c"}, {"$set": {"last": written}}, upsert=True)
            written += 1
            if written in milestones:
                milestones[written].set()

    writer = asyncio.create_task(write())
    try:
        await milestones[50].wait()
        code, output = await run_python(_BACKUP, str(tmp_path / "db"), str(tmp_path / "copy"))
        assert code == 0 and "done" in output, output
        milestones[written + 20] = later = asyncio.Event()
        await later.wait()  # the server went on serving writes
    finally:
        stop_writing.set()
        await writer
        await client.close()
        await stop(process)
    async with EmbeddedMongo(tmp_path / "copy") as server:
        copy = AsyncMongoClient(server.uri)
        ids = sorted(await copy.app.log.distinct("_id"))
        assert ids and ids == list(range(len(ids)))  # a prefix of the writes, without gaps
        counter = await copy.app.counter.find_one({"_id": "c"})
        assert counter is not None and counter["last"] in (len(ids) - 2, len(ids) - 1)
        assert await copy.app.log.count_documents({"n": {"$gte": 0}}) == len(ids)  # the index came along
        assert "n_1" in await copy.app.log.index_information()
        await copy.close()
    with pytest.raises(FileExistsError):
        backup(tmp_path / "db", tmp_path / "copy")
