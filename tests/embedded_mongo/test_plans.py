"""Query plans through explain: which index answers each query shape, with the results it gives.

Each test creates only the indexes it is about, so a real MongoDB picks the same plan; tests of plans
only this engine makes (an _id tie-break served by the index) are marked engine-only.
"""

from __future__ import annotations

import datetime
import re

import pytest
from bson import Regex
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import OperationFailure

from .conftest import engine_only

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def winning(explained: dict) -> dict:
    """The winning plan of an explain reply (classic or SBE layout, find or aggregate)."""
    planner = explained.get("queryPlanner")
    if planner is None:
        planner = explained["stages"][0]["$cursor"]["queryPlanner"]
    plan = planner["winningPlan"]
    return plan.get("queryPlan", plan)


def walk(plan: dict) -> list[dict]:
    """Every stage of a plan, top down."""
    found = [plan]
    if "inputStage" in plan:
        found += walk(plan["inputStage"])
    for child in plan.get("inputStages", []):
        found += walk(child)
    return found


def stage_names(plan: dict) -> list[str]:
    return [stage["stage"] for stage in walk(plan)]


def scans(plan: dict) -> list[dict]:
    """The index scans of a plan."""
    return [s for s in walk(plan) if s["stage"] in ("IXSCAN", "COUNT_SCAN", "DISTINCT_SCAN", "EXPRESS_IXSCAN")]


def index_names(plan: dict) -> list[str]:
    return [s.get("indexName", "_id_") for s in scans(plan)]


async def explain_find(coll, query, **options) -> dict:
    return winning(await coll.find(query, **options).explain())


async def ids(cursor) -> list:
    return [d["_id"] async for d in cursor]


async def test_id_lookup_and_collection_scan(db):
    await db.c.insert_many([{"_id": i, "n": i} for i in range(10)])
    plan = await explain_find(db.c, {"_id": 3})
    assert stage_names(plan)[-1] in ("IDHACK", "EXPRESS_IXSCAN")
    assert "COLLSCAN" in stage_names(await explain_find(db.c, {"n": 3}))
    assert await ids(db.c.find({"n": 3})) == [3]
    assert "COLLSCAN" not in stage_names(await explain_find(db.c, {"_id": {"$in": [1, 2]}}))
    plan = await explain_find(db.c, {"_id": {"$gte": 7}}, sort=[("_id", DESCENDING)])
    assert index_names(plan) == ["_id_"] and "SORT" not in stage_names(plan)
    assert await ids(db.c.find({"_id": {"$gte": 7}}, sort=[("_id", DESCENDING)])) == [9, 8, 7]


async def test_equality_range_and_in_use_the_index(db):
    await db.c.create_index("n")
    await db.c.insert_many([{"_id": i, "n": i % 10, "s": str(i)} for i in range(50)])
    plan = await explain_find(db.c, {"n": 5})
    assert "FETCH" in stage_names(plan) and index_names(plan) == ["n_1"]
    assert scans(plan)[0]["indexBounds"] == {"n": ["[5, 5]"]}

    plan = await explain_find(db.c, {"n": {"$gt": 3, "$lte": 7}})
    assert scans(plan)[0]["indexBounds"] == {"n": ["(3, 7]"]}
    assert sorted(await ids(db.c.find({"n": {"$gt": 3, "$lte": 7}}))) == [i for i in range(50) if 3 < i % 10 <= 7]

    plan = await explain_find(db.c, {"n": {"$in": [8, 1, 3]}})
    assert scans(plan)[0]["indexBounds"] == {"n": ["[1, 1]", "[3, 3]", "[8, 8]"]}
    assert await db.c.count_documents({"n": {"$in": [8, 1, 3]}}) == 15

    plan = await explain_find(db.c, {"n": {"$gte": 8}, "s": "9"})
    assert index_names(plan) == ["n_1"] and scans(plan)[0]["indexBounds"] == {"n": ["[8, inf.0]"]}
    assert await ids(db.c.find({"n": {"$gte": 8}, "s": "9"})) == [9]


async def test_ranges_stay_within_their_type(db):
    await db.c.create_index("v")
    await db.c.insert_many(
        [
            {"_id": 1, "v": 5},
            {"_id": 2, "v": "5"},
            {"_id": 3, "v": T0},
            {"_id": 4, "v": None},
            {"_id": 5},
            {"_id": 6, "v": 2.5},
            {"_id": 7, "v": [1, "z"]},
        ]
    )
    assert sorted(await ids(db.c.find({"v": {"$gt": 2}}))) == [1, 6]
    assert sorted(await ids(db.c.find({"v": {"$lt": 3}}))) == [6, 7]
    assert sorted(await ids(db.c.find({"v": {"$gte": "a"}}))) == [7]
    assert sorted(await ids(db.c.find({"v": {"$lte": T0}}))) == [3]
    assert index_names(await explain_find(db.c, {"v": {"$lte": T0}})) == ["v_1"]


async def test_compound_index_prefix_and_directions(db):
    await db.c.create_index([("a", ASCENDING), ("b", DESCENDING)])
    await db.c.insert_many([{"_id": i, "a": i % 3, "b": i} for i in range(30)])
    plan = await explain_find(db.c, {"a": 1})
    assert scans(plan)[0]["indexBounds"] == {"a": ["[1, 1]"], "b": ["[MaxKey, MinKey]"]}
    plan = await explain_find(db.c, {"a": 1, "b": {"$gt": 20}})
    assert scans(plan)[0]["indexBounds"] == {"a": ["[1, 1]"], "b": ["[inf.0, 20)"]}
    assert await ids(db.c.find({"a": 1, "b": {"$gt": 20}})) == [28, 25, 22]
    assert "COLLSCAN" in stage_names(await explain_find(db.c, {"b": 4}))  # not a prefix of the key

    plan = await explain_find(db.c, {"a": 2}, sort=[("b", DESCENDING)])
    assert "SORT" not in stage_names(plan) and scans(plan)[0]["direction"] == "forward"
    plan = await explain_find(db.c, {"a": 2}, sort=[("b", ASCENDING)])
    assert "SORT" not in stage_names(plan) and scans(plan)[0]["direction"] == "backward"
    assert await ids(db.c.find({"a": 2}, sort=[("b", ASCENDING)], limit=3)) == [2, 5, 8]
    plan = await explain_find(db.c, {}, sort=[("a", DESCENDING), ("b", ASCENDING)])
    assert "SORT" not in stage_names(plan) and scans(plan)[0]["direction"] == "backward"
    plan = await explain_find(db.c, {"a": 2}, sort=[("a", ASCENDING), ("b", DESCENDING)])
    assert "SORT" not in stage_names(plan)
    plan = await explain_find(db.c, {"a": {"$in": [0, 1]}}, sort=[("n", ASCENDING)])
    assert "SORT" in stage_names(plan)


@engine_only
async def test_id_tie_break_of_the_outbox_poll_is_served_by_the_index(db):
    await db.messages.create_index("next_attempt_at", name="outbox", partialFilterExpression={"status": "queued"})
    await db.messages.insert_many(
        [
            {
                "_id": i,
                "status": "queued" if i % 2 else "sent",
                "next_attempt_at": T0 + datetime.timedelta(seconds=i // 4),
            }
            for i in range(40)
        ]
    )
    query = {"status": "queued", "next_attempt_at": {"$lte": T0 + datetime.timedelta(seconds=5)}}
    sort = [("next_attempt_at", ASCENDING), ("_id", ASCENDING)]
    plan = await explain_find(db.messages, query, sort=sort, limit=1)
    assert stage_names(plan) == ["LIMIT", "FETCH", "IXSCAN"] and index_names(plan) == ["outbox"]
    polled = await db.messages.find_one_and_update(query, {"$set": {"status": "sending"}}, sort=sort)
    assert polled["_id"] == 1
    assert [d["_id"] async for d in db.messages.find(query, sort=sort)] == [3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]


async def test_partial_index_is_used_only_when_the_query_implies_its_filter(db):
    await db.messages.create_index("next_attempt_at", name="outbox", partialFilterExpression={"status": "queued"})
    await db.messages.insert_many(
        [
            {"_id": i, "status": "queued" if i % 2 else "sent", "next_attempt_at": T0 + datetime.timedelta(seconds=i)}
            for i in range(20)
        ]
    )
    due = {"$lte": T0 + datetime.timedelta(seconds=9)}
    plan = await explain_find(
        db.messages, {"status": "queued", "next_attempt_at": due}, sort=[("next_attempt_at", ASCENDING)]
    )
    assert index_names(plan) == ["outbox"] and "SORT" not in stage_names(plan)
    assert await ids(db.messages.find({"status": "queued", "next_attempt_at": due})) == [1, 3, 5, 7, 9]

    for query in (
        {"next_attempt_at": due},
        {"status": "sent", "next_attempt_at": due},
        {"status": {"$in": ["queued", "sent"]}, "next_attempt_at": due},
        {"$or": [{"status": "queued"}, {"x": 1}], "next_attempt_at": due},
    ):
        plan = await explain_find(db.messages, query)
        assert "outbox" not in index_names(plan), query
        assert "COLLSCAN" in stage_names(plan), query
    assert sorted(await ids(db.messages.find({"next_attempt_at": due}))) == list(range(10))
    assert sorted(await ids(db.messages.find({"status": "sent", "next_attempt_at": due}))) == [0, 2, 4, 6, 8]


async def test_partial_type_filter_is_implied_by_equality_on_a_string(db):
    await db.cards.create_index(
        "identities.key", unique=True, name="identity", partialFilterExpression={"identities.key": {"$type": "string"}}
    )
    await db.cards.insert_many(
        [
            {"_id": 1, "identities": [{"key": "a"}, {"key": "b"}]},
            {"_id": 2, "identities": [{"key": 5}]},
            {"_id": 3, "identities": []},
        ]
    )
    plan = await explain_find(db.cards, {"identities.key": "b"})
    assert index_names(plan) == ["identity"] and scans(plan)[0]["isMultiKey"] is True
    assert await ids(db.cards.find({"identities.key": "b"})) == [1]
    plan = await explain_find(db.cards, {"identities.key": 5})
    assert "identity" not in index_names(plan)
    assert await ids(db.cards.find({"identities.key": 5})) == [2]


async def test_sparse_index_is_not_used_for_null(db):
    await db.s.create_index("tag", sparse=True)
    await db.s.insert_many([{"_id": 1, "tag": "x"}, {"_id": 2}, {"_id": 3, "tag": None}])
    assert index_names(await explain_find(db.s, {"tag": "x"})) == ["tag_1"]
    plan = await explain_find(db.s, {"tag": None})
    assert "COLLSCAN" in stage_names(plan)
    assert sorted(await ids(db.s.find({"tag": None}))) == [2, 3]


async def test_null_equality_is_served_from_the_index(db):
    await db.n.create_index("f")
    await db.n.insert_many(
        [
            {"_id": 1, "f": None},
            {"_id": 2},
            {"_id": 3, "f": 0},
            {"_id": 4, "f": [None, 1]},
            {"_id": 5, "f": []},
            {"_id": 6, "f": False},
        ]
    )
    plan = await explain_find(db.n, {"f": None})
    assert index_names(plan) == ["f_1"] and "[null, null]" in scans(plan)[0]["indexBounds"]["f"]
    assert sorted(await ids(db.n.find({"f": None}))) == [1, 2, 4]
    assert sorted(await ids(db.n.find({"f": {"$in": [None, 0]}}))) == [1, 2, 3, 4]


async def test_anchored_prefix_regex_is_a_range(db):
    await db.r.create_index("name")
    await db.r.insert_many(
        [{"_id": i, "name": name} for i, name in enumerate(["abc", "abd", "ab", "b", "Abc", "xabc", "ab\ncd", "ac"])]
    )
    plan = await explain_find(db.r, {"name": {"$regex": "^ab"}})
    assert index_names(plan) == ["name_1"]
    assert '["ab", "ac")' in scans(plan)[0]["indexBounds"]["name"]
    assert sorted(await ids(db.r.find({"name": {"$regex": "^ab"}}))) == [0, 1, 2, 6]
    assert sorted(await ids(db.r.find({"name": Regex("^abc?$")}))) == [0, 2]
    assert sorted(await ids(db.r.find({"name": re.compile("^ab", re.IGNORECASE)}))) == [0, 1, 2, 4, 6]
    assert sorted(await ids(db.r.find({"name": {"$regex": "bc"}}))) == [0, 4, 5]


async def test_multikey_index_bounds_and_sort(db):
    await db.m.create_index("v")
    await db.m.insert_many(
        [{"_id": 1, "v": [1, 10]}, {"_id": 2, "v": 7}, {"_id": 3, "v": [5, 6]}, {"_id": 4, "v": []}, {"_id": 5}]
    )
    plan = await explain_find(db.m, {"v": {"$gt": 5, "$lt": 7}})
    assert index_names(plan) == ["v_1"] and scans(plan)[0]["isMultiKey"] is True
    # Elements may meet the two conditions separately: [1, 10] has one above 5 and one below 7.
    assert sorted(await ids(db.m.find({"v": {"$gt": 5, "$lt": 7}}))) == [1, 3]
    assert sorted(await ids(db.m.find({"v": {"$elemMatch": {"$gt": 5, "$lt": 7}}}))) == [3]
    # A sort on a multikey field orders by each document's smallest (or largest) element.
    plan = await explain_find(db.m, {"v": {"$gte": 5}}, sort=[("v", ASCENDING)])
    assert "SORT" in stage_names(plan)
    assert await ids(db.m.find({"v": {"$gte": 5}}, sort=[("v", ASCENDING)])) == [1, 3, 2]
    assert await ids(db.m.find({}, sort=[("v", DESCENDING), ("_id", 1)])) == [1, 2, 3, 5, 4]
    assert await ids(db.m.find({"v": 10})) == [1]


async def test_or_of_indexed_branches_is_a_union(db):
    await db.o.create_index("a")
    await db.o.create_index("b")
    await db.o.insert_many([{"_id": i, "a": i % 4, "b": i % 5} for i in range(40)])
    query = {"$or": [{"a": 1}, {"b": 2}]}
    plan = await explain_find(db.o, query)
    assert "OR" in stage_names(plan) and sorted(index_names(plan)) == ["a_1", "b_1"]
    expected = [i for i in range(40) if i % 4 == 1 or i % 5 == 2]
    assert sorted(await ids(db.o.find(query))) == expected  # each document once
    assert await db.o.count_documents(query) == len(expected)
    plan = await explain_find(db.o, {"$or": [{"a": 1}, {"c": 2}]})
    assert "COLLSCAN" in stage_names(plan)


async def test_unique_index_equality(db):
    await db.u.create_index("email", unique=True)
    await db.u.insert_many([{"_id": i, "email": f"{i}@x"} for i in range(5)])
    plan = await explain_find(db.u, {"email": "3@x"})
    assert index_names(plan) == ["email_1"] and scans(plan)[0]["isUnique"] is True
    assert await ids(db.u.find({"email": "3@x"})) == [3]


async def test_other_commands_explain_their_plans(db):
    await db.e.create_index("k")
    await db.e.insert_many([{"_id": i, "k": i % 3} for i in range(9)])
    counted = await db.command("explain", {"count": "e", "query": {"k": 1}}, verbosity="queryPlanner")
    assert index_names(winning(counted)) == ["k_1"]
    pipeline = [{"$match": {"k": 2}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]
    aggregated = await db.command(
        "explain", {"aggregate": "e", "pipeline": pipeline, "cursor": {}}, verbosity="queryPlanner"
    )
    assert index_names(winning(aggregated)) == ["k_1"]
    modified = await db.command(
        "explain", {"findAndModify": "e", "query": {"k": 0}, "update": {"$set": {"x": 1}}}, verbosity="queryPlanner"
    )
    assert "k_1" in index_names(winning(modified))
    updated = await db.command(
        "explain", {"update": "e", "updates": [{"q": {"k": 0}, "u": {"$set": {"x": 1}}}]}, verbosity="queryPlanner"
    )
    assert "k_1" in index_names(winning(updated))
    deleted = await db.command(
        "explain", {"delete": "e", "deletes": [{"q": {"_id": 4}, "limit": 1}]}, verbosity="queryPlanner"
    )
    assert "COLLSCAN" not in stage_names(winning(deleted))
    assert await db.e.count_documents({"x": 1}) == 0  # explaining changed nothing
    stats = await db.command("explain", {"find": "e", "filter": {"k": 2}}, verbosity="executionStats")
    assert stats["executionStats"]["nReturned"] == 3 and stats["executionStats"]["totalDocsExamined"] == 3


async def test_hint_forces_an_index_and_rejects_unknown_ones(db):
    await db.h.create_index("a")
    await db.h.insert_many([{"_id": i, "a": i, "b": i} for i in range(5)])
    plan = await explain_find(db.h, {"b": 3}, hint="a_1")
    assert index_names(plan) == ["a_1"]
    assert await ids(db.h.find({"b": 3}, hint="a_1")) == [3]
    assert "COLLSCAN" in stage_names(await explain_find(db.h, {"a": 3}, hint=[("$natural", 1)]))
    with pytest.raises(OperationFailure):
        await db.h.find_one({"a": 1}, hint="nope_1")
