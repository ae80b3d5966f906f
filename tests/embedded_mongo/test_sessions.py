"""Retryable writes are applied once; what the engine does not do, it refuses with MongoDB's codes."""

from __future__ import annotations

import asyncio
import struct
import uuid

import bson
import pytest
from bson import Binary, Int64
from pymongo import IndexModel
from pymongo.collation import Collation
from pymongo.errors import OperationFailure

from embedded_mongo import EmbeddedMongo

from .conftest import engine_only


class _Wire:
    """A raw OP_MSG connection, so a test can send exactly the retry a driver would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.request_id = 0

    @classmethod
    async def open(cls, port: int) -> _Wire:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def command(self, command: dict) -> dict:
        self.request_id += 1
        body = struct.pack("<I", 0) + b"\x00" + bson.encode(command)
        self.writer.write(struct.pack("<iiii", 16 + len(body), self.request_id, 0, 2013) + body)
        length, _, _, _ = struct.unpack("<iiii", await self.reader.readexactly(16))
        return bson.decode((await self.reader.readexactly(length - 16))[5:])

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@engine_only
async def test_a_retried_write_is_applied_once(tmp_path):
    lsid = {"id": Binary(uuid.uuid4().bytes, 4)}

    def write(name: str, body: dict, txn: int) -> dict:
        return {name: "c", **body, "lsid": lsid, "txnNumber": Int64(txn), "$db": "app"}

    insert = write("insert", {"documents": [{"_id": 1, "n": 0}]}, 1)
    increment = write("update", {"updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]}, 2)
    modify = write("findAndModify", {"query": {"_id": 1}, "update": {"$inc": {"n": 10}}, "new": True}, 3)
    async with EmbeddedMongo(tmp_path / "db") as server:
        wire = await _Wire.open(server.port)
        first = await wire.command(insert)
        assert first["ok"] == 1.0 and first["n"] == 1
        retried = await wire.command(insert)  # same lsid and txnNumber: not a duplicate key, the same answer
        assert retried["ok"] == 1.0 and retried["n"] == 1 and "writeErrors" not in retried
        assert (await wire.command(increment))["nModified"] == 1
        assert (await wire.command(increment))["nModified"] == 1
        assert (await wire.command(modify))["value"] == {"_id": 1, "n": 11}
        assert (await wire.command(modify))["value"] == {"_id": 1, "n": 11}
        stale = await wire.command(increment)
        assert stale["ok"] == 0.0 and stale["code"] == 225
        await wire.close()
    async with EmbeddedMongo(tmp_path / "db") as server:  # the memory of retries survives a restart
        wire = await _Wire.open(server.port)
        assert (await wire.command(modify))["value"] == {"_id": 1, "n": 11}
        found = await wire.command({"find": "c", "filter": {}, "$db": "app"})
        assert found["cursor"]["firstBatch"] == [{"_id": 1, "n": 11}]
        await wire.close()


@engine_only
async def test_drivers_see_a_replica_set_that_supports_retryable_writes(mongo_client, db):
    await db.c.insert_one({"_id": 1})
    hello = await mongo_client.admin.command("hello")
    assert hello["isWritablePrimary"] is True and hello["setName"] and hello["logicalSessionTimeoutMinutes"]
    assert "lastWrite" in hello and "topologyVersion" in hello
    description = mongo_client.topology_description.server_descriptions()
    assert all(server.retryable_writes_supported for server in description.values())


@engine_only
async def test_transactions_and_collation_are_refused(mongo_client, db):
    await db.c.insert_one({"_id": 1})
    async with mongo_client.start_session() as session:
        with pytest.raises(OperationFailure) as error:
            async with await session.start_transaction():
                await db.c.insert_one({"_id": 2}, session=session)
        assert error.value.code == 20
    assert await db.c.count_documents({}) == 1
    with pytest.raises(OperationFailure) as error:
        await db.c.find_one({}, collation=Collation("fr"))
    assert error.value.code == 238
    with pytest.raises(OperationFailure) as error:
        await db.c.create_indexes([IndexModel([("body", "text")])])
    assert error.value.code == 67
    with pytest.raises(OperationFailure) as error:
        await (await db.c.aggregate([{"$out": "copy"}])).to_list()
    assert error.value.code == 238


async def test_text_search_needs_a_text_index(db):
    await db.c.insert_one({"body": "hello"})
    with pytest.raises(OperationFailure) as error:
        await db.c.find_one({"$text": {"$search": "hello"}})
    assert error.value.code == 27
