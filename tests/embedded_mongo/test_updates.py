"""Conformance through PyMongo: update operators, upserts, arrayFilters and findAndModify."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from pymongo import ReturnDocument, WriteConcern
from pymongo.errors import OperationFailure, WriteError


async def _doc(coll, _id=1):
    return await coll.find_one({"_id": _id}, {"_id": 0})


async def test_upsert_with_set_on_insert(db):
    update = {"$set": {"seen": 1}, "$setOnInsert": {"created": "first"}}
    first = await db.u.update_one({"key": "k1"}, update, upsert=True)
    assert first.upserted_id is not None and first.matched_count == 0
    doc = await db.u.find_one({"_id": first.upserted_id}, {"_id": 0})
    assert doc == {"key": "k1", "seen": 1, "created": "first"}

    again = {"$set": {"seen": 2}, "$setOnInsert": {"created": "second"}}
    second = await db.u.update_one({"key": "k1"}, again, upsert=True)
    assert second.upserted_id is None and second.matched_count == 1
    assert await db.u.find_one({}, {"_id": 0}) == {"key": "k1", "seen": 2, "created": "first"}


async def test_upsert_seeds_from_query(db):
    result = await db.u.update_one({"_id": "fixed", "a.b": 1, "n": {"$gt": 3}}, {"$inc": {"count": 1}}, upsert=True)
    assert result.upserted_id == "fixed"
    assert await db.u.find_one({"_id": "fixed"}) == {"_id": "fixed", "a": {"b": 1}, "count": 1}
    replaced = await db.u.replace_one({"name": "r"}, {"name": "r", "v": 1}, upsert=True)
    assert (await db.u.find_one({"_id": replaced.upserted_id}, {"_id": 0})) == {"name": "r", "v": 1}


async def test_find_one_and_update(db):
    await db.f.insert_many([{"_id": i, "n": i, "tag": "t"} for i in range(1, 4)])
    before = await db.f.find_one_and_update({"tag": "t"}, {"$inc": {"n": 10}}, sort=[("n", -1)])
    assert before == {"_id": 3, "n": 3, "tag": "t"}
    after = await db.f.find_one_and_update(
        {"tag": "t"},
        {"$inc": {"n": 10}},
        sort=[("n", 1)],
        projection={"n": 1, "_id": 0},
        return_document=ReturnDocument.AFTER,
    )
    assert after == {"n": 11}
    assert await db.f.find_one_and_update({"tag": "none"}, {"$set": {"x": 1}}) is None

    upserted = await db.f.find_one_and_update(
        {"_id": 9}, {"$set": {"n": 9}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert upserted == {"_id": 9, "n": 9}
    missing_before = await db.f.find_one_and_update({"_id": 10}, {"$set": {"n": 10}}, upsert=True)
    assert missing_before is None
    assert await db.f.count_documents({}) == 5


async def test_find_one_and_replace_and_delete(db):
    await db.f.insert_many([{"_id": i, "n": i} for i in range(1, 4)])
    replaced = await db.f.find_one_and_replace({"_id": 2}, {"n": 20}, return_document=ReturnDocument.AFTER)
    assert replaced == {"_id": 2, "n": 20}
    deleted = await db.f.find_one_and_delete({}, sort=[("n", -1)])
    assert deleted == {"_id": 2, "n": 20}
    assert await db.f.find_one_and_delete({"_id": 99}) is None
    assert sorted(await db.f.distinct("_id")) == [1, 3]


async def test_basic_operators(db):
    await db.o.insert_one({"_id": 1, "a": 1, "s": "x", "old": 1, "lo": 5, "hi": 5, "m": 3, "nested": {"keep": True}})
    await db.o.update_one(
        {"_id": 1},
        {
            "$inc": {"a": 2, "fresh": 5, "deep.counter": 1},
            "$set": {"nested.added": [1], "x.y.z": "new"},
            "$unset": {"s": "", "not.there": ""},
            "$rename": {"old": "renamed"},
            "$min": {"lo": 3},
            "$max": {"hi": 4},
            "$mul": {"m": 2, "zero": 7},
        },
    )
    assert await _doc(db.o) == {
        "a": 3,
        "fresh": 5,
        "deep": {"counter": 1},
        "nested": {"keep": True, "added": [1]},
        "x": {"y": {"z": "new"}},
        "renamed": 1,
        "lo": 3,
        "hi": 5,
        "m": 6,
        "zero": 0,
    }


async def test_current_date(db):
    await db.o.insert_one({"_id": 1})
    await db.o.update_one({"_id": 1}, {"$currentDate": {"at": True}})
    at = (await _doc(db.o))["at"]
    assert isinstance(at, datetime.datetime)
    assert abs(at - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(hours=1)


async def test_array_operators(db):
    await db.o.insert_one(
        {
            "_id": 1,
            "log": [1, 2],
            "set": ["a"],
            "nums": [1, 5, 8, 5],
            "objs": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}],
            "q": [1, 2, 3],
        }
    )
    await db.o.update_one(
        {"_id": 1},
        {
            "$push": {"log": {"$each": [3, 4, 5], "$slice": -3}, "made": "first"},
            "$addToSet": {"set": {"$each": ["a", "b", "b"]}},
            "$pull": {"nums": {"$gte": 5}, "objs": {"k": 2}},
            "$pop": {"q": -1},
        },
    )
    assert await _doc(db.o) == {
        "log": [3, 4, 5],
        "set": ["a", "b"],
        "nums": [1],
        "objs": [{"k": 1, "v": "a"}],
        "q": [2, 3],
        "made": ["first"],
    }
    await db.o.update_one(
        {"_id": 1},
        {"$push": {"log": {"$each": [0], "$position": 0}}, "$addToSet": {"set": "a"}, "$pullAll": {"q": [3, 9]}},
    )
    assert await db.o.find_one({"_id": 1}, {"log": 1, "set": 1, "q": 1, "_id": 0}) == {
        "log": [0, 3, 4, 5],
        "set": ["a", "b"],
        "q": [2],
    }
    await db.o.update_one(
        {"_id": 1}, {"$push": {"objs": {"$each": [{"k": 0}, {"k": 9}], "$sort": {"k": -1}, "$slice": 2}}}
    )
    assert (await _doc(db.o))["objs"] == [{"k": 9}, {"k": 1, "v": "a"}]


async def test_positional_operator(db):
    await db.o.insert_one({"_id": 1, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}], "scores": [3, 7, 9]})
    await db.o.update_one({"_id": 1, "items.sku": "b"}, {"$set": {"items.$.qty": 20}})
    await db.o.update_one({"_id": 1, "scores": {"$gt": 5}}, {"$inc": {"scores.$": 100}})
    await db.o.update_one({"items": {"$elemMatch": {"sku": "a"}}}, {"$set": {"items.$.seen": True}})
    assert await _doc(db.o) == {
        "items": [{"sku": "a", "qty": 1, "seen": True}, {"sku": "b", "qty": 20}],
        "scores": [3, 107, 9],
    }


async def test_all_positional_operator(db):
    await db.o.insert_one({"_id": 1, "scores": [1, 2, 3], "items": [{"n": 1}, {"n": 2, "tags": ["x"]}]})
    await db.o.update_one({"_id": 1}, {"$inc": {"scores.$[]": 10}, "$set": {"items.$[].done": True}})
    assert await _doc(db.o) == {
        "scores": [11, 12, 13],
        "items": [{"n": 1, "done": True}, {"n": 2, "tags": ["x"], "done": True}],
    }
    await db.o.update_many({}, {"$push": {"items.$[].log": "touched"}})
    assert [i["log"] for i in (await _doc(db.o))["items"]] == [["touched"], ["touched"]]


async def test_array_filters(db):
    await db.o.insert_one(
        {
            "_id": 1,
            "grades": [{"g": 80, "w": 1}, {"g": 95, "w": 1}, {"g": 100, "w": 1}],
            "scores": [1, 5, 10],
            "matrix": [{"row": 1, "cells": [1, 2, 3]}, {"row": 2, "cells": [4, 5, 6]}],
        }
    )
    await db.o.update_one({"_id": 1}, {"$set": {"grades.$[high].w": 2}}, array_filters=[{"high.g": {"$gte": 95}}])
    await db.o.update_one({"_id": 1}, {"$inc": {"scores.$[big]": 100}}, array_filters=[{"big": {"$gte": 5}}])
    await db.o.update_one(
        {"_id": 1}, {"$mul": {"matrix.$[r].cells.$[c]": 10}}, array_filters=[{"r.row": 2}, {"c": {"$gt": 4}}]
    )
    assert await _doc(db.o) == {
        "grades": [{"g": 80, "w": 1}, {"g": 95, "w": 2}, {"g": 100, "w": 2}],
        "scores": [1, 105, 110],
        "matrix": [{"row": 1, "cells": [1, 2, 3]}, {"row": 2, "cells": [4, 50, 60]}],
    }

    result = await db.o.find_one_and_update(
        {"_id": 1},
        {"$set": {"grades.$[low].w": 0}},
        array_filters=[{"low.g": {"$lt": 90}}],
        return_document=ReturnDocument.AFTER,
        projection={"grades": 1, "_id": 0},
    )
    assert result == {"grades": [{"g": 80, "w": 0}, {"g": 95, "w": 2}, {"g": 100, "w": 2}]}


async def test_array_filter_errors(db):
    await db.o.insert_one({"_id": 1, "a": [1, 2]})
    with pytest.raises(WriteError):
        await db.o.update_one({"_id": 1}, {"$set": {"a.$[x]": 0}}, array_filters=[])
    with pytest.raises(WriteError):
        await db.o.update_one({"_id": 1}, {"$set": {"a.$[x]": 0}}, array_filters=[{"x": 1}, {"y": 2}])
    assert await _doc(db.o) == {"a": [1, 2]}


async def test_update_errors_leave_document_unchanged(db):
    await db.o.insert_one({"_id": 1, "s": "text", "a": {"b": 1}})
    with pytest.raises(WriteError) as error:
        await db.o.update_one({"_id": 1}, {"$inc": {"s": 1}})
    assert error.value.code == 14
    with pytest.raises(WriteError) as error:
        await db.o.update_one({"_id": 1}, {"$set": {"a": 1, "a.b": 2}})
    assert error.value.code == 40
    with pytest.raises(WriteError) as error:
        await db.o.update_one({"_id": 1}, {"$set": {"_id": 2}})
    assert error.value.code == 66
    with pytest.raises(WriteError):
        await db.o.update_one({"_id": 1}, {"$push": {"s": 1}})
    with pytest.raises(WriteError):
        await db.o.update_one({"_id": 1}, {"$set": {"s.inner": 1}})
    assert await _doc(db.o) == {"s": "text", "a": {"b": 1}}


async def test_pipeline_update(db):
    await db.o.insert_one({"_id": 1, "a": 2, "b": 3, "junk": 1})
    await db.o.update_one({"_id": 1}, [{"$set": {"total": {"$add": ["$a", "$b"]}}}, {"$unset": "junk"}])
    assert await _doc(db.o) == {"a": 2, "b": 3, "total": 5}


async def test_update_many_with_filter_on_updated_field(db):
    await db.o.insert_many([{"_id": i, "n": i} for i in range(5)])
    result = await db.o.update_many({"n": {"$lt": 3}}, {"$inc": {"n": 10}})
    assert result.modified_count == 3
    assert sorted(await db.o.distinct("n")) == [3, 4, 10, 11, 12]


async def test_unacknowledged_writes(db):
    fire_and_forget = db.get_collection("w0", write_concern=WriteConcern(w=0))
    for i in range(5):
        await fire_and_forget.insert_one({"i": i})
    # w=0 gets no reply; the writes are visible once the server has processed them.
    for _ in range(500):
        if await db.w0.count_documents({}) == 5:
            break
        await asyncio.sleep(0.01)
    assert await db.w0.count_documents({}) == 5


async def test_bad_update_document(db):
    await db.o.insert_one({"_id": 1})
    with pytest.raises(OperationFailure):
        await db.o.update_one({"_id": 1}, {"$bogus": {"a": 1}})
