"""The `counters` collection: human numbers (#17 for threads, merge #3) from atomic increments."""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection


async def next_value(counters: AsyncCollection, name: str) -> int:
    """The next number of a sequence, starting at 1; concurrent callers never get the same one."""
    doc = await counters.find_one_and_update(
        {"_id": name}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc is not None  # an upsert returning the document after it always has one
    return int(doc["seq"])
