"""Change streams through PyMongo's watch(): events, full documents, pipelines, resuming, history."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from bson import Timestamp
from pymongo.errors import OperationFailure


async def _next(stream, limit: int = 200):
    """The next event (try_next waits up to maxAwaitTimeMS each time)."""
    for _ in range(limit):
        event = await stream.try_next()
        if event is not None:
            return event
    raise AssertionError("no change event arrived")


async def _events(stream, count: int) -> list[dict]:
    return [await _next(stream) for _ in range(count)]


async def test_collection_events(db):
    await db.create_collection("c")
    async with await db.c.watch(max_await_time_ms=50) as stream:
        await db.c.insert_one({"_id": 1, "a": 1, "b": {"x": 1, "y": 2}, "list": [1, 2]})
        await db.c.update_one({"_id": 1}, {"$set": {"a": 2, "b.x": 5}, "$unset": {"b.y": ""}, "$push": {"list": 3}})
        await db.c.replace_one({"_id": 1}, {"z": True})
        await db.c.delete_one({"_id": 1})
        insert, update, replace, delete = await _events(stream, 4)
    assert [e["operationType"] for e in (insert, update, replace, delete)] == ["insert", "update", "replace", "delete"]
    for event in (insert, update, replace, delete):
        assert event["ns"] == {"db": db.name, "coll": "c"}
        assert event["documentKey"] == {"_id": 1}
        assert isinstance(event["clusterTime"], Timestamp)
        assert isinstance(event["wallTime"], datetime.datetime)
        assert "_data" in event["_id"]
    assert insert["fullDocument"] == {"_id": 1, "a": 1, "b": {"x": 1, "y": 2}, "list": [1, 2]}
    description = update["updateDescription"]
    assert description["updatedFields"] == {"a": 2, "b.x": 5, "list.2": 3}
    assert description["removedFields"] == ["b.y"]
    assert "fullDocument" not in update
    assert replace["fullDocument"] == {"_id": 1, "z": True}
    assert "fullDocument" not in delete
    assert insert["clusterTime"] < update["clusterTime"] < replace["clusterTime"] < delete["clusterTime"]


async def test_update_lookup_gives_the_current_document(db):
    await db.create_collection("c")
    async with await db.c.watch(full_document="updateLookup", max_await_time_ms=50) as stream:
        await db.c.insert_one({"_id": 1, "n": 0})
        await db.c.update_one({"_id": 1}, {"$inc": {"n": 1}})
        await db.c.update_one({"_id": 1}, {"$inc": {"n": 1}})
        _insert, first, second = await _events(stream, 3)
    # The lookup happens when the event is read: both updates see the latest version.
    assert first["fullDocument"] == second["fullDocument"] == {"_id": 1, "n": 2}
    async with await db.c.watch(full_document="updateLookup", max_await_time_ms=50) as stream:
        await db.c.update_one({"_id": 1}, {"$set": {"gone": True}})
        await db.c.delete_one({"_id": 1})
        update, _delete = await _events(stream, 2)
    assert update["fullDocument"] is None


async def test_pipeline_filters_and_reshapes_events(db):
    await db.create_collection("c")
    pipeline = [
        {"$match": {"operationType": "insert", "fullDocument.kind": "wanted"}},
        {"$project": {"fullDocument.secret": 0}},
    ]
    async with await db.c.watch(pipeline, max_await_time_ms=50) as stream:
        await db.c.insert_one({"_id": 1, "kind": "other"})
        await db.c.update_one({"_id": 1}, {"$set": {"kind": "wanted"}})
        await db.c.insert_one({"_id": 2, "kind": "wanted", "secret": "s"})
        event = await _next(stream)
    assert event["documentKey"] == {"_id": 2}
    assert event["fullDocument"] == {"_id": 2, "kind": "wanted"}


async def test_database_stream_sees_every_collection(db):
    await db.create_collection("a")
    await db.create_collection("b")
    async with await db.watch(max_await_time_ms=50) as stream:
        await db.a.insert_one({"_id": "in a"})
        await db.b.insert_one({"_id": "in b"})
        events = await _events(stream, 2)
    assert [(e["ns"]["coll"], e["documentKey"]["_id"]) for e in events] == [("a", "in a"), ("b", "in b")]


async def test_resume_after_start_after_and_start_at_operation_time(db, mongo_client):
    await db.create_collection("c")
    async with await db.c.watch(max_await_time_ms=50) as stream:
        await db.c.insert_many([{"_id": i} for i in range(3)])
        first = await _next(stream)
        token = stream.resume_token
    await db.c.insert_one({"_id": 3})
    async with await db.c.watch(resume_after=token, max_await_time_ms=50) as stream:
        assert [e["documentKey"]["_id"] for e in await _events(stream, 3)] == [1, 2, 3]
    async with await db.c.watch(start_after=first["_id"], max_await_time_ms=50) as stream:
        assert (await _next(stream))["documentKey"]["_id"] == 1
    async with mongo_client.start_session() as session:
        await db.c.insert_one({"_id": 4}, session=session)
        operation_time = session.operation_time
    await db.c.insert_one({"_id": 5})
    async with await db.c.watch(start_at_operation_time=operation_time, max_await_time_ms=50) as stream:
        assert [e["documentKey"]["_id"] for e in await _events(stream, 2)] == [4, 5]


async def test_every_batch_carries_a_post_batch_resume_token(db):
    await db.create_collection("c")
    opened = await db.command({"aggregate": "c", "pipeline": [{"$changeStream": {}}], "cursor": {}})
    cursor = opened["cursor"]
    assert cursor["firstBatch"] == [] and cursor["id"] != 0 and "_data" in cursor["postBatchResumeToken"]
    assert "operationTime" in opened
    empty = await db.command({"getMore": cursor["id"], "collection": "c", "maxTimeMS": 20})
    assert empty["cursor"]["nextBatch"] == [] and "_data" in empty["cursor"]["postBatchResumeToken"]
    await db.c.insert_one({"_id": 1})
    found = await db.command({"getMore": cursor["id"], "collection": "c", "maxTimeMS": 5000})
    assert [e["documentKey"] for e in found["cursor"]["nextBatch"]] == [{"_id": 1}]
    assert found["cursor"]["postBatchResumeToken"]["_data"] >= empty["cursor"]["postBatchResumeToken"]["_data"]
    await db.command({"killCursors": "c", "cursors": [cursor["id"]]})


async def test_a_waiting_stream_wakes_up_for_a_new_event(db):
    await db.create_collection("c")
    async with await db.c.watch(max_await_time_ms=10_000) as stream:
        waiting = asyncio.create_task(stream.try_next())
        await asyncio.sleep(0.05)
        await db.c.insert_one({"_id": "late"})
        event = await asyncio.wait_for(waiting, 30)
    assert event is not None and event["documentKey"] == {"_id": "late"}


async def test_dropping_the_collection_invalidates_its_stream(db):
    await db.c.insert_one({"_id": 1})
    async with await db.c.watch(max_await_time_ms=50) as stream:
        await db.c.drop()
        drop = await _next(stream)
        assert drop["operationType"] == "drop" and drop["ns"] == {"db": db.name, "coll": "c"}
        invalidate = await _next(stream)
        assert invalidate["operationType"] == "invalidate"
        assert not stream.alive
    async with await db.c.watch(start_after=invalidate["_id"], max_await_time_ms=50) as stream:
        await db.c.insert_one({"_id": 2})
        assert (await _next(stream))["documentKey"] == {"_id": 2}


async def test_stages_that_change_the_resume_token_or_are_not_allowed_are_errors(db):
    await db.create_collection("c")
    with pytest.raises(OperationFailure):
        await db.c.watch([{"$group": {"_id": None}}])
    async with await db.c.watch([{"$project": {"_id": 0}}], max_await_time_ms=50) as stream:
        await db.c.insert_one({"_id": 1})
        with pytest.raises(OperationFailure) as error:
            await _next(stream)
    assert error.value.code == 280


async def test_pre_and_post_images_when_the_collection_keeps_them(db):
    await db.create_collection("imaged", changeStreamPreAndPostImages={"enabled": True})
    await db.create_collection("plain")
    options = {
        "full_document": "whenAvailable",
        "full_document_before_change": "whenAvailable",
        "max_await_time_ms": 50,
    }
    async with await db.imaged.watch(**options) as stream:
        await db.imaged.insert_one({"_id": 1, "n": 0})
        await db.imaged.update_one({"_id": 1}, {"$inc": {"n": 1}})
        await db.imaged.update_one({"_id": 1}, {"$inc": {"n": 1}})
        await db.imaged.delete_one({"_id": 1})
        _insert, first, second, delete = await _events(stream, 4)
    # Unlike updateLookup, post-images are the document as each update left it.
    assert (first["fullDocument"], second["fullDocument"]) == ({"_id": 1, "n": 1}, {"_id": 1, "n": 2})
    assert first["fullDocumentBeforeChange"] == {"_id": 1, "n": 0}
    assert delete["fullDocumentBeforeChange"] == {"_id": 1, "n": 2}
    async with await db.plain.watch(**options) as stream:
        await db.plain.insert_one({"_id": 1, "n": 0})
        await db.plain.update_one({"_id": 1}, {"$inc": {"n": 1}})
        _insert, update = await _events(stream, 2)
    assert update["fullDocument"] is None and update["fullDocumentBeforeChange"] is None
    async with await db.plain.watch(full_document="required", max_await_time_ms=50) as stream:
        await db.plain.update_one({"_id": 1}, {"$inc": {"n": 1}})
        with pytest.raises(OperationFailure):
            await _next(stream)
