"""Conformance through PyMongo: CRUD, queries, cursors, bulk writes and value round-trips."""

from __future__ import annotations

import asyncio
import datetime
import random

import pytest
from bson import Binary, Decimal128, Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, CollectionInvalid, DuplicateKeyError, OperationFailure

UTC = datetime.UTC


async def test_insert_find_update_delete(db):
    coll = db.items
    result = await coll.insert_one({"name": "a", "n": 1})
    assert isinstance(result.inserted_id, ObjectId)
    assert await coll.find_one({"_id": result.inserted_id}) == {"_id": result.inserted_id, "name": "a", "n": 1}
    await coll.insert_many([{"name": "b", "n": 2}, {"name": "c", "n": 3}])

    changed = await coll.update_one({"name": "b"}, {"$set": {"n": 20}})
    assert (changed.matched_count, changed.modified_count) == (1, 1)
    unchanged = await coll.update_one({"name": "b"}, {"$set": {"n": 20}})
    assert (unchanged.matched_count, unchanged.modified_count) == (1, 0)
    missing = await coll.update_one({"name": "zzz"}, {"$set": {"n": 0}})
    assert (missing.matched_count, missing.modified_count, missing.upserted_id) == (0, 0, None)
    many = await coll.update_many({}, {"$inc": {"n": 1}})
    assert (many.matched_count, many.modified_count) == (3, 3)

    replaced = await coll.replace_one({"name": "c"}, {"name": "c2", "extra": True})
    assert replaced.modified_count == 1
    doc = await coll.find_one({"name": "c2"}, {"_id": 0})
    assert doc == {"name": "c2", "extra": True}

    assert (await coll.delete_one({"name": "a"})).deleted_count == 1
    assert (await coll.delete_one({"name": "a"})).deleted_count == 0
    assert (await coll.delete_many({})).deleted_count == 2
    assert await coll.find_one({}) is None


async def test_duplicate_id(db):
    await db.items.insert_one({"_id": "x"})
    with pytest.raises(DuplicateKeyError):
        await db.items.insert_one({"_id": "x"})


async def test_projection(db):
    await db.p.insert_one(
        {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "arr": [1, 2, 3, 4], "subs": [{"k": 1, "v": "x"}, {"k": 2, "v": "y"}]}
    )
    assert await db.p.find_one({}, {"a": 1}) == {"_id": 1, "a": 1}
    assert await db.p.find_one({}, {"a": 1, "_id": 0}) == {"a": 1}
    assert await db.p.find_one({}, {"b.c": 1, "_id": 0}) == {"b": {"c": 2}}
    assert await db.p.find_one({}, {"b": 0, "arr": 0, "subs": 0}) == {"_id": 1, "a": 1}
    assert await db.p.find_one({}, {"arr": {"$slice": 2}, "_id": 0, "a": 1}) == {"a": 1, "arr": [1, 2]}
    assert await db.p.find_one({}, {"subs": {"$elemMatch": {"k": 2}}}) == {"_id": 1, "subs": [{"k": 2, "v": "y"}]}
    assert await db.p.find_one({}, {"subs.v": 1, "_id": 0}) == {"subs": [{"v": "x"}, {"v": "y"}]}


async def test_sort_skip_limit(db):
    numbers = list(range(20))
    random.Random(7).shuffle(numbers)
    await db.s.insert_many([{"n": n, "group": n % 3} for n in numbers])
    ascending = [d["n"] async for d in db.s.find({}, {"n": 1}).sort("n", ASCENDING)]
    assert ascending == list(range(20))
    page = [d["n"] async for d in db.s.find().sort("n", DESCENDING).skip(2).limit(3)]
    assert page == [17, 16, 15]
    compound = [
        (d["group"], d["n"]) async for d in db.s.find({"n": {"$lt": 6}}).sort([("group", ASCENDING), ("n", DESCENDING)])
    ]
    assert compound == [(0, 3), (0, 0), (1, 4), (1, 1), (2, 5), (2, 2)]
    assert len(await db.s.find().limit(5).to_list()) == 5
    assert len(await db.s.find().skip(18).to_list()) == 2


async def test_sort_on_missing_and_array_fields(db):
    await db.s.insert_many(
        [{"_id": 1, "v": 5}, {"_id": 2}, {"_id": 3, "v": None}, {"_id": 4, "v": 1}, {"_id": 5, "v": [7, 0]}]
    )
    ascending = [d["_id"] async for d in db.s.find().sort([("v", 1), ("_id", 1)])]
    # missing and null sort first (as null), arrays by their smallest element.
    assert ascending == [2, 3, 5, 4, 1]
    descending = [d["_id"] async for d in db.s.find().sort([("v", -1), ("_id", 1)])]
    assert descending == [5, 1, 4, 2, 3]


async def test_cursor_batches_return_every_document_once(db):
    await db.b.insert_many([{"i": i} for i in range(250)])
    seen = [d["i"] async for d in db.b.find().batch_size(7)]
    assert sorted(seen) == list(range(250))
    limited = [d["i"] async for d in db.b.find().sort("i", 1).batch_size(7).limit(30)]
    assert limited == list(range(30))
    aggregated = [d["i"] async for d in await db.b.aggregate([{"$sort": {"i": 1}}], batchSize=11)]
    assert aggregated == list(range(250))


async def test_get_more_and_killed_cursor(mongo_client, db):
    await db.k.insert_many([{"i": i} for i in range(20)])
    async with mongo_client.start_session() as session:
        first = await db.command({"find": "k", "sort": {"i": 1}, "batchSize": 3}, session=session)
        cursor_id = first["cursor"]["id"]
        assert [d["i"] for d in first["cursor"]["firstBatch"]] == [0, 1, 2]
        assert cursor_id != 0
        more = await db.command({"getMore": cursor_id, "collection": "k", "batchSize": 4}, session=session)
        assert [d["i"] for d in more["cursor"]["nextBatch"]] == [3, 4, 5, 6]
        rest = await db.command({"getMore": cursor_id, "collection": "k"}, session=session)
        assert [d["i"] for d in rest["cursor"]["nextBatch"]] == list(range(7, 20))
        assert rest["cursor"]["id"] == 0

        second = await db.command({"find": "k", "batchSize": 2}, session=session)
        second_id = second["cursor"]["id"]
        killed = await db.command({"killCursors": "k", "cursors": [second_id]}, session=session)
        assert killed["cursorsKilled"] == [second_id]
        with pytest.raises(OperationFailure) as error:
            await db.command({"getMore": second_id, "collection": "k"}, session=session)
        assert error.value.code == 43


async def test_closing_a_cursor_early(db):
    await db.k.insert_many([{"i": i} for i in range(50)])
    cursor = db.k.find().batch_size(5)
    assert (await cursor.next())["i"] == 0
    await cursor.close()
    assert await db.k.count_documents({}) == 50


async def test_count_and_distinct(db):
    await db.c.insert_many([{"k": i % 4, "tags": ["x", f"t{i % 2}"]} for i in range(10)])
    assert await db.c.count_documents({}) == 10
    assert await db.c.count_documents({"k": 1}) == 3
    assert await db.c.count_documents({}, skip=4, limit=3) == 3
    assert await db.c.estimated_document_count() == 10
    assert sorted(await db.c.distinct("k")) == [0, 1, 2, 3]
    assert sorted(await db.c.distinct("tags")) == ["t0", "t1", "x"]
    assert sorted(await db.c.distinct("k", {"tags": "t1"})) == [1, 3]


async def test_query_operators(db):
    await db.q.insert_many(
        [
            {
                "_id": 1,
                "tags": ["red", "blue"],
                "n": 5,
                "items": [{"sku": "a", "qty": 1}],
                "who": {"name": "Ann", "age": 30},
            },
            {"_id": 2, "tags": ["green"], "n": 10, "items": [{"sku": "b", "qty": 5}, {"sku": "a", "qty": 9}]},
            {"_id": 3, "n": None, "items": []},
        ]
    )

    async def ids(query):
        return sorted([d["_id"] async for d in db.q.find(query)])

    assert await ids({"tags": "red"}) == [1]
    assert await ids({"tags": {"$in": ["green", "blue"]}}) == [1, 2]
    assert await ids({"tags": {"$nin": ["green"]}}) == [1, 3]
    assert await ids({"tags": {"$all": ["red", "blue"]}}) == [1]
    assert await ids({"tags": {"$size": 1}}) == [2]
    assert await ids({"tags": {"$regex": "^gr"}}) == [2]
    assert await ids({"tags": {"$regex": "^BL", "$options": "i"}}) == [1]
    assert await ids({"items.sku": {"$regex": "b"}}) == [2]
    assert await ids({"items": {"$elemMatch": {"sku": "a", "qty": {"$gt": 5}}}}) == [2]
    assert await ids({"items.sku": "a", "items.qty": 1}) == [1]
    assert await ids({"n": {"$gte": 5, "$lt": 10}}) == [1]
    assert await ids({"n": None}) == [3]
    assert await ids({"tags": {"$exists": False}}) == [3]
    assert await ids({"who.name": "Ann"}) == [1]
    assert await ids({"$or": [{"n": 10}, {"who.age": {"$gt": 18}}]}) == [1, 2]
    assert await ids({"$and": [{"n": {"$ne": None}}, {"n": {"$ne": 5}}]}) == [2]
    assert await ids({"tags": {"$ne": "red"}}) == [2, 3]
    assert await ids({"$expr": {"$gt": ["$n", 7]}}) == [2]
    assert await ids({"_id": {"$in": [2, 3, 4]}}) == [2, 3]


async def test_invalid_query_is_an_error_and_connection_survives(db):
    await db.q.insert_one({"a": 1})
    with pytest.raises(OperationFailure):
        await db.q.find_one({"$bogus": 1})
    with pytest.raises(OperationFailure):
        await db.q.find_one({"a": {"$bogus": 1}})
    assert (await db.q.find_one({}, {"_id": 0})) == {"a": 1}


async def test_unknown_command(db):
    with pytest.raises(OperationFailure) as error:
        await db.command("definitelyNotACommand")
    assert error.value.code == 59


async def test_bulk_write_ordered_stops_at_duplicate(db):
    with pytest.raises(BulkWriteError) as error:
        await db.bw.bulk_write(
            [InsertOne({"_id": 1}), InsertOne({"_id": 2}), InsertOne({"_id": 1}), InsertOne({"_id": 3})], ordered=True
        )
    details = error.value.details
    assert details["nInserted"] == 2
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(2, 11000)]
    assert sorted(await db.bw.distinct("_id")) == [1, 2]


async def test_bulk_write_unordered_continues_after_duplicate(db):
    with pytest.raises(BulkWriteError) as error:
        await db.bw.bulk_write(
            [InsertOne({"_id": 1}), InsertOne({"_id": 2}), InsertOne({"_id": 1}), InsertOne({"_id": 3})], ordered=False
        )
    details = error.value.details
    assert details["nInserted"] == 3
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(2, 11000)]
    assert sorted(await db.bw.distinct("_id")) == [1, 2, 3]


async def test_bulk_write_mixed_operations(db):
    result = await db.bw.bulk_write(
        [
            InsertOne({"_id": 1, "n": 0}),
            InsertOne({"_id": 2, "n": 0}),
            UpdateOne({"_id": 1}, {"$inc": {"n": 5}}),
            UpdateOne({"_id": 9}, {"$set": {"n": 9}}, upsert=True),
            DeleteOne({"_id": 2}),
        ]
    )
    assert (
        result.inserted_count,
        result.matched_count,
        result.modified_count,
        result.deleted_count,
        result.upserted_count,
    ) == (2, 1, 1, 1, 1)
    assert result.upserted_ids == {3: 9}
    assert [d async for d in db.bw.find().sort("_id", 1)] == [{"_id": 1, "n": 5}, {"_id": 9, "n": 9}]


async def test_values_round_trip(db):
    aware = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    naive = datetime.datetime(2001, 1, 2, 3, 4, 5, 678000)
    offset = datetime.datetime(2024, 5, 6, 9, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    doc = {
        "_id": ObjectId(),
        "aware": aware,
        "naive": naive,
        "offset": offset,
        "bin": Binary(b"\x00\x01\xff", 5),
        "raw": b"\x00\x02",
        "dec": Decimal128("1.10"),
        "big": Int64(2**40),
        "small": Int64(3),
        "float": 1.5,
        "nested": {"when": [aware]},
    }
    await db.v.insert_one(doc)
    back = await db.v.find_one({"_id": doc["_id"]})
    assert back["aware"] == aware and back["aware"].tzinfo is not None
    assert back["naive"] == naive.replace(tzinfo=UTC)
    assert back["offset"] == offset
    assert back["bin"] == Binary(b"\x00\x01\xff", 5)
    assert back["raw"] == b"\x00\x02"
    assert back["dec"] == Decimal128("1.10")
    assert back["big"] == 2**40 and isinstance(back["big"], Int64)
    assert isinstance(back["small"], Int64)
    assert back["nested"] == {"when": [aware]}
    assert await db.v.count_documents({"aware": {"$gte": aware}}) == 1
    assert await db.v.count_documents({"aware": {"$gt": aware}}) == 0
    assert await db.v.count_documents({"naive": naive}) == 1


async def test_concurrent_inserts_all_land(db):
    await asyncio.gather(*(db.many.insert_one({"i": i}) for i in range(1000)))
    assert await db.many.count_documents({}) == 1000
    assert sorted(await db.many.distinct("i")) == list(range(1000))


async def test_collections_admin(db):
    await db.create_collection("alpha")
    await db.beta.insert_one({"x": 1})
    assert sorted(await db.list_collection_names()) == ["alpha", "beta"]
    assert await db.list_collection_names(filter={"name": "beta"}) == ["beta"]
    with pytest.raises((OperationFailure, CollectionInvalid)):
        await db.create_collection("alpha")
    await db.beta.delete_many({})
    assert "beta" in await db.list_collection_names()
    await db.alpha.drop()
    assert await db.list_collection_names() == ["beta"]
    await db.beta.rename("gamma")
    assert await db.list_collection_names() == ["gamma"]


async def test_skip_and_limit_may_be_any_int64(db) -> None:
    await db.items.insert_many([{"_id": n} for n in range(3)])
    assert await db.items.find({}, skip=2**63 - 1).to_list() == []
    assert [d["_id"] async for d in db.items.find({}, limit=2**63 - 1, sort=[("_id", 1)])] == [0, 1, 2]
    assert await db.items.count_documents({}, skip=2**63 - 1) == 0
