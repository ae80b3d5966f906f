"""The `dead_letters` collection: inputs the gateway accepted but could not understand, with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gateway.model import from_doc

# Enough of the input to see what it was; a hostile body can be as large as a request may be.
PAYLOAD_LIMIT = 4096


@dataclass(frozen=True)
class DeadLetter:
    """One input kept instead of being handled: where it came from, why, and (the start of) what it was."""

    id: ObjectId
    source: str
    reason: str
    payload: str
    at: datetime


class DeadLetterRepo:
    """Keeps dead letters (they expire, see the TTL index) and lists the latest."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def add(self, source: str, reason: str, payload: str, at: datetime) -> DeadLetter:
        """Keep one input; the payload is cut to PAYLOAD_LIMIT characters."""
        letter = {"_id": ObjectId(), "source": source, "reason": reason[:1000], "payload": payload[:PAYLOAD_LIMIT],
                  "at": at}  # fmt: skip
        await self.collection.insert_one(letter)
        return from_doc(DeadLetter, letter)

    async def latest(self, limit: int = 10) -> list[DeadLetter]:
        """The newest dead letters first."""
        cursor = self.collection.find({}, sort=[("at", DESCENDING)], limit=limit)
        return [from_doc(DeadLetter, d) async for d in cursor]

    async def count(self) -> int:
        # From the collection's size: counting documents would read them all.
        return await self.collection.estimated_document_count()
