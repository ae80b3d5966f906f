"""Conformance through PyMongo: aggregation pipelines."""

from __future__ import annotations


async def _seed(db):
    await db.orders.insert_many(
        [
            {"_id": 1, "customer": "ann", "total": 10, "items": ["a", "b"]},
            {"_id": 2, "customer": "bob", "total": 5, "items": ["a"]},
            {"_id": 3, "customer": "ann", "total": 7, "items": []},
            {"_id": 4, "customer": "cid", "total": 1, "items": ["c"]},
        ]
    )
    await db.customers.insert_many([{"_id": "ann", "city": "Oslo"}, {"_id": "bob", "city": "Rome"}])


async def test_group_and_sort(db):
    await _seed(db)
    pipeline = [
        {"$match": {"total": {"$gt": 1}}},
        {"$group": {"_id": "$customer", "sum": {"$sum": "$total"}, "n": {"$sum": 1}}},
        {"$sort": {"sum": -1}},
    ]
    result = await (await db.orders.aggregate(pipeline)).to_list()
    assert result == [{"_id": "ann", "sum": 17, "n": 2}, {"_id": "bob", "sum": 5, "n": 1}]


async def test_lookup_unwind_project(db):
    await _seed(db)
    pipeline = [
        {"$lookup": {"from": "customers", "localField": "customer", "foreignField": "_id", "as": "who"}},
        {"$unwind": "$who"},
        {"$project": {"_id": 1, "city": "$who.city"}},
        {"$sort": {"_id": 1}},
    ]
    result = await (await db.orders.aggregate(pipeline)).to_list()
    assert result == [{"_id": 1, "city": "Oslo"}, {"_id": 2, "city": "Rome"}, {"_id": 3, "city": "Oslo"}]


async def test_unwind_count_and_facet(db):
    await _seed(db)
    unwound = await (await db.orders.aggregate([{"$unwind": "$items"}, {"$count": "n"}])).to_list()
    assert unwound == [{"n": 4}]
    facets = await (
        await db.orders.aggregate(
            [
                {
                    "$facet": {
                        "big": [{"$match": {"total": {"$gte": 7}}}, {"$count": "n"}],
                        "names": [{"$group": {"_id": None, "all": {"$addToSet": "$customer"}}}],
                    }
                }
            ]
        )
    ).to_list()
    assert facets[0]["big"] == [{"n": 2}]
    assert sorted(facets[0]["names"][0]["all"]) == ["ann", "bob", "cid"]


async def test_aggregate_on_missing_collection(db):
    assert await (await db.nothing.aggregate([{"$match": {}}])).to_list() == []


async def test_aggregate_does_not_modify_stored_documents(db):
    await _seed(db)
    await (await db.orders.aggregate([{"$set": {"total": 0}}, {"$unwind": "$items"}])).to_list()
    assert await db.orders.find_one({"_id": 1}) == {"_id": 1, "customer": "ann", "total": 10, "items": ["a", "b"]}


async def test_sort_stage_orders_arrays_by_min_or_max_element(db):
    await db.s.insert_many([{"_id": 1, "v": [5, 0]}, {"_id": 2, "v": 3}, {"_id": 3}])
    ascending = await (await db.s.aggregate([{"$sort": {"v": 1}}])).to_list()
    assert [d["_id"] for d in ascending] == [3, 1, 2]
    descending = await (await db.s.aggregate([{"$sort": {"v": -1}}])).to_list()
    assert [d["_id"] for d in descending] == [1, 2, 3]
