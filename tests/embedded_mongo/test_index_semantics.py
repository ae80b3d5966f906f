"""Indexed queries return exactly what a collection scan returns, for many random query shapes."""

from __future__ import annotations

import datetime
import random

from pymongo import ASCENDING, DESCENDING, IndexModel

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_NATURAL = [("$natural", 1)]


def _value(rng: random.Random, arrays: bool = True):
    kind = rng.randrange(10 if arrays else 7)
    if kind < 3:
        return rng.randrange(-3, 6)
    if kind == 3:
        return rng.choice([0.5, 2.5, -1.5, 3.0])
    if kind == 4:
        return rng.choice(["a", "ab", "abc", "b", "ba", ""])
    if kind == 5:
        return None
    if kind == 6:
        return T0 + datetime.timedelta(days=rng.randrange(5))
    if kind == 7:
        return [rng.randrange(-3, 6) for _ in range(rng.randrange(3))]
    if kind == 8:
        return {"x": rng.randrange(3)}
    return rng.choice([True, False])


def _document(rng: random.Random, number: int) -> dict:
    doc: dict = {"_id": number}
    for name in ("a", "b", "c"):
        if rng.random() < 0.85:
            doc[name] = _value(rng, arrays=name == "a")  # one array field per compound index
    if rng.random() < 0.7:
        doc["s"] = [{"k": rng.randrange(4)} for _ in range(rng.randrange(3))]
    return doc


def _condition(rng: random.Random):
    kind = rng.randrange(9)
    scalar = _value(rng)
    while isinstance(scalar, (list, dict)):
        scalar = _value(rng)
    if kind == 0:
        return scalar
    if kind == 1:
        return {"$in": [scalar, _value(rng) if rng.random() < 0.5 else rng.randrange(5)]}
    if kind in (2, 3, 4):
        low, high = sorted([rng.randrange(-3, 6), rng.randrange(-3, 6)])
        operators = rng.sample([("$gt", low), ("$gte", low), ("$lt", high), ("$lte", high)], rng.randrange(1, 3))
        return dict(operators)
    if kind == 5:
        return {"$regex": rng.choice(["^a", "^ab", "^b", "a"])}
    if kind == 6:
        return None
    if kind == 7:
        return {"$ne": scalar}
    return {"$exists": rng.random() < 0.5}


def _query(rng: random.Random) -> dict:
    fields = rng.sample(["a", "b", "c", "s.k", "_id"], rng.randrange(1, 3))
    query = {field: _condition(rng) for field in fields}
    if rng.random() < 0.2:
        query = {"$or": [query, {rng.choice(["a", "b"]): _condition(rng)}]}
    return query


async def test_indexed_results_equal_collection_scans(db):
    rng = random.Random(20260101)
    coll = db.semantics
    await coll.create_indexes(
        [
            IndexModel([("a", ASCENDING)]),
            IndexModel([("b", DESCENDING), ("a", ASCENDING)]),
            IndexModel([("c", ASCENDING)], sparse=True),
            IndexModel([("s.k", ASCENDING)]),
            IndexModel([("a", ASCENDING), ("c", DESCENDING)], name="a_c", partialFilterExpression={"a": {"$gte": 0}}),
        ]
    )
    await coll.insert_many([_document(rng, i) for i in range(300)])
    for _ in range(80):
        query = _query(rng)
        indexed = sorted([d["_id"] async for d in coll.find(query, {"_id": 1})])
        scanned = sorted([d["_id"] async for d in coll.find(query, {"_id": 1}, hint=_NATURAL)])
        assert indexed == scanned, query
        assert await coll.count_documents(query) == len(scanned), query
        sort = [(rng.choice(["a", "b", "c"]), rng.choice([ASCENDING, DESCENDING])), ("_id", ASCENDING)]
        limit = rng.choice([0, 1, 5])
        ordered = [d["_id"] async for d in coll.find(query, {"_id": 1}, sort=sort, limit=limit)]
        expected = [d["_id"] async for d in coll.find(query, {"_id": 1}, sort=sort, limit=limit, hint=_NATURAL)]
        assert ordered == expected, (query, sort, limit)


async def test_writes_keep_indexes_in_step(db):
    rng = random.Random(7)
    coll = db.churn
    await coll.create_index([("a", ASCENDING), ("b", ASCENDING)])
    await coll.create_index("s.k")
    await coll.insert_many([_document(rng, i) for i in range(100)])
    for step in range(300):
        target = rng.randrange(120)
        action = rng.randrange(4)
        if action == 0:
            await coll.update_one({"_id": target}, {"$set": {"a": _value(rng), "s": [{"k": rng.randrange(4)}]}})
        elif action == 1:
            await coll.delete_one({"_id": target})
        elif action == 2:
            await coll.replace_one({"_id": target}, _document(rng, target), upsert=True)
        else:
            await coll.update_many({"a": _value(rng)}, {"$set": {"b": _value(rng, arrays=False)}})
        if step % 20 == 0:
            for _ in range(10):
                query = _query(rng)
                indexed = sorted([d["_id"] async for d in coll.find(query, {"_id": 1})])
                scanned = sorted([d["_id"] async for d in coll.find(query, {"_id": 1}, hint=_NATURAL)])
                assert indexed == scanned, query
