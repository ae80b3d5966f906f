"""Satisfaction ratings, kept on their threads (`csat`, `csat_asked_at`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from gateway.model import Thread, from_doc


class RatingRepo:
    """Writes ratings onto the `threads` collection, each guarded so that a repeated answer changes nothing."""

    def __init__(self, threads: AsyncCollection) -> None:
        self.threads = threads

    async def asked(self, thread_id: ObjectId, at: datetime) -> bool:
        """Note that the customer was asked; False when they already were (the survey goes out once)."""
        result = await self.threads.update_one(
            {"_id": thread_id, "csat_asked_at": None}, {"$set": {"csat_asked_at": at}}
        )
        return result.modified_count == 1

    async def rate(self, thread_id: ObjectId, score: int, comment: str | None, at: datetime) -> Thread | None:
        """Store the first rating of an asked thread; None when it was rated already (or never asked)."""
        rating: dict[str, Any] = {"score": score, "comment": comment, "at": at, "prompt_id": None}
        doc = await self.threads.find_one_and_update(
            {"_id": thread_id, "csat_asked_at": {"$ne": None}, "csat": None},
            {"$set": {"csat": rating}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def await_comment(self, thread_id: ObjectId, prompt_id: ObjectId) -> None:
        """Remember the message that asked for a comment: a reply to it is the comment."""
        await self.threads.update_one(
            {"_id": thread_id, "csat": {"$ne": None}}, {"$set": {"csat.prompt_id": prompt_id}}
        )

    async def comment(self, thread_id: ObjectId, prompt_id: ObjectId, text: str) -> Thread | None:
        """Add the comment the prompt asked for, once; None when there is one already."""
        doc = await self.threads.find_one_and_update(
            {"_id": thread_id, "csat.prompt_id": prompt_id, "csat.comment": None},
            {"$set": {"csat.comment": text}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def between(self, start: datetime, end: datetime, limit: int = 100_000) -> list[tuple[int, int | None]]:
        """(score, operator id) of every rating given in [start, end)."""
        cursor = self.threads.find(
            {"csat.at": {"$gte": start, "$lt": end}}, {"csat.score": 1, "operator_id": 1, "_id": 0}, limit=limit
        )
        return [(doc["csat"]["score"], doc.get("operator_id")) async for doc in cursor]
