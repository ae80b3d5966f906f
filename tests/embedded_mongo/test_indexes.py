"""Conformance through PyMongo: index management and unique constraints."""

from __future__ import annotations

import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, OperationFailure


async def test_unique_index(db):
    await db.people.create_index("email", unique=True)
    await db.people.insert_one({"_id": 1, "email": "a@x"})
    with pytest.raises(DuplicateKeyError) as error:
        await db.people.insert_one({"_id": 2, "email": "a@x"})
    assert error.value.details["keyValue"] == {"email": "a@x"}
    await db.people.insert_one({"_id": 2, "email": "b@x"})
    with pytest.raises(DuplicateKeyError):
        await db.people.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        await db.people.find_one_and_update({"_id": 2}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        await db.people.update_one({"email": "c@x"}, {"$set": {"email": "a@x"}}, upsert=True)
    # Re-setting a document's own key is not a conflict.
    await db.people.update_one({"_id": 1}, {"$set": {"email": "a@x", "n": 1}})
    await db.people.delete_one({"_id": 1})
    await db.people.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    assert await db.people.find_one({"email": "a@x"}) == {"_id": 2, "email": "a@x"}


async def test_unique_index_treats_missing_as_null(db):
    await db.people.create_index("email", unique=True)
    await db.people.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        await db.people.insert_one({"_id": 2})
    with pytest.raises(DuplicateKeyError):
        await db.people.insert_one({"_id": 3, "email": None})


async def test_compound_unique_index(db):
    await db.c.create_index([("a", ASCENDING), ("b", DESCENDING)], unique=True)
    await db.c.insert_many([{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 1}, {"a": 1}])
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"a": 1, "b": 2})
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"a": 1, "b": None})
    await db.c.insert_one({"a": 3, "b": 2})
    assert await db.c.count_documents({"a": 1}) == 3


async def test_multikey_unique_index_on_array_of_subdocuments(db):
    contacts = db.contacts
    await contacts.create_index("identities.key", unique=True)
    await contacts.insert_one({"_id": "ann", "identities": [{"key": "tg:1"}, {"key": "wa:1"}]})
    with pytest.raises(DuplicateKeyError):
        await contacts.insert_one({"_id": "bob", "identities": [{"key": "wa:1"}]})
    await contacts.insert_one({"_id": "bob", "identities": [{"key": "tg:2"}, {"key": "tg:2"}]})
    await contacts.update_one({"_id": "ann"}, {"$push": {"identities": {"key": "web:1"}}})
    with pytest.raises(DuplicateKeyError):
        await contacts.update_one({"_id": "bob"}, {"$push": {"identities": {"key": "tg:1"}}})
    with pytest.raises(DuplicateKeyError):
        await contacts.update_one(
            {"_id": "bob"}, {"$set": {"identities.$[i].key": "web:1"}}, array_filters=[{"i.key": "tg:2"}]
        )
    assert (await contacts.find_one({"identities.key": "wa:1"}))["_id"] == "ann"
    assert (await contacts.find_one({"identities.key": {"$in": ["x", "tg:2"]}}))["_id"] == "bob"
    # Moving an identity from one contact to another works once it is released.
    await contacts.update_one({"_id": "ann"}, {"$pull": {"identities": {"key": "wa:1"}}})
    await contacts.update_one({"_id": "bob"}, {"$push": {"identities": {"key": "wa:1"}}})
    assert (await contacts.find_one({"identities.key": "wa:1"}))["_id"] == "bob"


async def test_multikey_unique_index_on_array_of_scalars(db):
    await db.t.create_index("tags", unique=True)
    await db.t.insert_one({"tags": ["a", "b"]})
    with pytest.raises(DuplicateKeyError):
        await db.t.insert_one({"tags": ["c", "b"]})
    with pytest.raises(DuplicateKeyError):
        await db.t.insert_one({"tags": "a"})
    await db.t.insert_one({"tags": ["c", "c"]})


async def test_partial_unique_index(db):
    await db.p.create_index("email", unique=True, partialFilterExpression={"email": {"$type": "string"}})
    await db.p.insert_many(
        [{"_id": 1}, {"_id": 2}, {"_id": 3, "email": None}, {"_id": 4, "email": None}, {"_id": 5, "email": "a@x"}]
    )
    with pytest.raises(DuplicateKeyError):
        await db.p.insert_one({"_id": 6, "email": "a@x"})
    await db.p.update_one({"_id": 5}, {"$unset": {"email": ""}})
    await db.p.insert_one({"_id": 6, "email": "a@x"})
    info = await db.p.index_information()
    assert info["email_1"]["partialFilterExpression"] == {"email": {"$type": "string"}}


async def test_sparse_unique_index(db):
    await db.s.create_index("nick", unique=True, sparse=True)
    await db.s.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3, "nick": "n"}])
    with pytest.raises(DuplicateKeyError):
        await db.s.insert_one({"_id": 4, "nick": "n"})
    await db.s.insert_one({"_id": 5, "nick": None})
    with pytest.raises(DuplicateKeyError):
        await db.s.insert_one({"_id": 6, "nick": None})


async def test_creating_unique_index_over_duplicates_fails(db):
    await db.d.insert_many([{"k": 1}, {"k": 2}, {"k": 1}])
    with pytest.raises(OperationFailure) as error:
        await db.d.create_index("k", unique=True)
    assert error.value.code == 11000
    assert "k_1" not in await db.d.index_information()
    await db.d.insert_one({"k": 2})
    await db.d.delete_one({"k": 2})
    await db.d.delete_one({"k": 1})
    await db.d.create_index("k", unique=True)
    with pytest.raises(DuplicateKeyError):
        await db.d.insert_one({"k": 1})


async def test_list_and_drop_indexes(db):
    names = await db.i.create_indexes(
        [
            IndexModel([("a", 1)]),
            IndexModel([("b", -1), ("c", 1)], name="bc"),
            IndexModel([("d", 1)], unique=True, sparse=True),
        ]
    )
    assert names == ["a_1", "bc", "d_1"]
    assert await db.i.create_index("a") == "a_1"  # same definition again is a no-op
    listed = {ix["name"]: ix async for ix in await db.i.list_indexes()}
    assert set(listed) == {"_id_", "a_1", "bc", "d_1"}
    assert dict(listed["bc"]["key"]) == {"b": -1, "c": 1}
    assert listed["d_1"]["unique"] is True and listed["d_1"]["sparse"] is True
    assert list(dict(listed["_id_"]["key"])) == ["_id"]

    await db.i.drop_index("bc")
    await db.i.drop_index([("a", 1)])
    assert set(await db.i.index_information()) == {"_id_", "d_1"}
    with pytest.raises(OperationFailure) as error:
        await db.i.drop_index("nope")
    assert error.value.code == 27
    await db.i.drop_indexes()
    assert set(await db.i.index_information()) == {"_id_"}
    await db.i.insert_many([{"d": 1}, {"d": 1}])  # the unique index is really gone


async def test_indexed_lookups_agree_with_scans(db):
    await db.l.create_index("k")
    await db.l.create_index([("g", 1), ("k", 1)])
    await db.l.insert_many([{"_id": i, "k": i % 7, "g": i % 3, "arr": [i, i + 100]} for i in range(200)])
    await db.l.create_index("arr")
    assert await db.l.count_documents({"k": 3}) == len([i for i in range(200) if i % 7 == 3])
    assert await db.l.count_documents({"k": {"$in": [1, 2]}, "g": 0}) == len(
        [i for i in range(200) if i % 7 in (1, 2) and i % 3 == 0]
    )
    assert await db.l.count_documents({"g": 2, "k": {"$gt": 4}}) == len(
        [i for i in range(200) if i % 3 == 2 and i % 7 > 4]
    )
    assert await db.l.count_documents({"arr": 150}) == 2
    assert await db.l.count_documents({"k": 3.0}) == await db.l.count_documents({"k": 3})
    await db.l.update_many({"k": 3}, {"$set": {"k": 30}})
    assert await db.l.count_documents({"k": 3}) == 0
    assert await db.l.count_documents({"k": {"$eq": 30}}) == len([i for i in range(200) if i % 7 == 3])
    await db.l.delete_many({"k": 30})
    assert await db.l.count_documents({"k": 30}) == 0


async def test_partial_unique_multikey_index_skips_documents_without_the_key(db):
    await db.cards.create_index(
        "identities.key", unique=True, partialFilterExpression={"identities.key": {"$type": "string"}}
    )
    await db.cards.insert_many([{"identities": []}, {"identities": []}, {"identities": [{"key": "a"}]}])
    with pytest.raises(DuplicateKeyError):
        await db.cards.insert_one({"identities": [{"key": "b"}, {"key": "a"}]})
    await db.cards.update_one({"identities.key": "a"}, {"$set": {"identities": []}})
    await db.cards.insert_one({"identities": [{"key": "a"}]})  # free again once its holder let go
    assert await db.cards.count_documents({}) == 4


async def test_queries_outside_a_partial_index_still_find_everything(db):
    await db.threads.create_index("contact_id", unique=True, partialFilterExpression={"open": True})
    await db.threads.insert_many(
        [
            {"contact_id": 1, "open": True, "n": 1},
            {"contact_id": 1, "open": False, "n": 2},
            {"contact_id": 1, "open": False, "n": 3},
        ]
    )
    assert [d["n"] async for d in db.threads.find({"contact_id": 1, "open": True})] == [1]
    assert sorted([d["n"] async for d in db.threads.find({"contact_id": 1, "open": False})]) == [2, 3]
    assert sorted([d["n"] async for d in db.threads.find({"contact_id": 1})]) == [1, 2, 3]

    await db.cards.create_index(
        "identities.key", unique=True, partialFilterExpression={"identities.key": {"$type": "string"}}
    )
    await db.cards.insert_many([{"identities": [{"key": "a"}]}, {"identities": [{"key": 5}]}])
    assert await db.cards.count_documents({"identities.key": "a"}) == 1
    assert await db.cards.count_documents({"identities.key": 5}) == 1  # not in the index, still found
    assert await db.cards.count_documents({"identities.key": {"$in": ["a", 5]}}) == 2


async def test_sparse_and_compound_indexes_answer_equality_queries_correctly(db):
    await db.messages.create_index(
        [("channel", 1), ("account", 1), ("mid", 1)], unique=True, partialFilterExpression={"mid": {"$type": "string"}}
    )
    await db.messages.create_index("tag", sparse=True)
    await db.messages.insert_many(
        [
            {"channel": "tg", "account": "a", "mid": "1", "tag": "x"},
            {"channel": "tg", "account": "b", "mid": "1"},
            {"channel": "wa", "account": "a", "mid": "1", "tag": "y"},
            {"channel": "tg", "account": "a", "mid": None},
            {"channel": "tg", "account": "a"},
        ]
    )
    assert await db.messages.count_documents({"channel": "tg", "account": "a", "mid": "1"}) == 1
    assert await db.messages.count_documents({"channel": "tg", "account": {"$in": ["a", "b"]}, "mid": "1"}) == 2
    assert await db.messages.count_documents({"channel": "tg", "account": "a", "mid": None}) == 2
    assert await db.messages.count_documents({"channel": "tg", "account": "a"}) == 3
    assert await db.messages.count_documents({"tag": "x"}) == 1
    assert await db.messages.count_documents({"tag": None}) == 3


async def test_compound_multikey_equality_matches_any_elements(db):
    await db.contacts.create_index([("ids.channel", 1), ("ids.key", 1)])
    await db.contacts.insert_one({"ids": [{"channel": "tg", "key": "1"}, {"channel": "wa", "key": "2"}]})
    # Conditions on one array's fields may be met by different elements.
    assert await db.contacts.count_documents({"ids.channel": "tg", "ids.key": "2"}) == 1
    assert await db.contacts.count_documents({"ids": {"$elemMatch": {"channel": "tg", "key": "2"}}}) == 0
