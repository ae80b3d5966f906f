"""The `erasures` collection: the audit of every erasure (who, what, when), without the erased data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from gateway.model import from_doc, to_doc


class ErasureStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Leftover:
    """Somewhere the person's data is that the gateway could not delete, and why."""

    place: str
    detail: str
    count: int | None = None


@dataclass(frozen=True)
class ErasureRecord:
    """One erasure: the cards erased (by id only), who asked, when, and how much went."""

    id: ObjectId
    contact_id: ObjectId  # the card named in the request
    status: ErasureStatus
    via: str  # "api", "operator_bot" or "retention"
    started_at: datetime
    by_operator: int | None = None
    api_token: str | None = None  # which API token asked: a fingerprint, never the token
    contact_ids: tuple[ObjectId, ...] = ()  # every card erased: the live one and those merged into it
    thread_ids: tuple[ObjectId, ...] = ()  # the conversations kept as timings only
    counts: Mapping[str, int] = field(default_factory=dict)
    leftovers: tuple[Leftover, ...] = ()
    finished_at: datetime | None = None
    # Until then, the privacy loop sweeps again for what a message in flight during the erasure stored.
    sweep_until: datetime | None = None


class ErasureRepo:
    """Reads and writes erasure records."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def start(
        self, contact_id: ObjectId, via: str, now: datetime, *, by_operator: int | None, api_token: str | None
    ) -> ErasureRecord:
        doc = {
            "_id": ObjectId(),
            "contact_id": contact_id,
            "status": ErasureStatus.RUNNING.value,
            "via": via,
            "by_operator": by_operator,
            "api_token": api_token,
            "started_at": now,
            "contact_ids": [],
        }
        await self.collection.insert_one(doc)
        return from_doc(ErasureRecord, doc)

    async def discard(self, erasure_id: ObjectId) -> None:
        """Forget an erasure that never took hold of a card."""
        await self.collection.delete_one({"_id": erasure_id, "status": ErasureStatus.RUNNING.value, "contact_ids": []})

    async def hold(self, erasure_id: ObjectId, contact_ids: Sequence[ObjectId]) -> None:
        """Record the cards the erasure holds, before anything of them is deleted."""
        await self.collection.update_one({"_id": erasure_id}, {"$set": {"contact_ids": list(contact_ids)}})

    async def finish(
        self,
        erasure_id: ObjectId,
        now: datetime,
        sweep_until: datetime,
        *,
        thread_ids: Sequence[ObjectId],
        counts: Mapping[str, int],
        leftovers: Sequence[Leftover],
    ) -> ErasureRecord | None:
        doc = await self.collection.find_one_and_update(
            {"_id": erasure_id},
            {
                "$set": {
                    "status": ErasureStatus.DONE.value,
                    "finished_at": now,
                    "sweep_until": sweep_until,
                    "thread_ids": list(thread_ids),
                    "counts": dict(counts),
                    "leftovers": [to_doc(leftover) for leftover in leftovers],
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(ErasureRecord, doc) if doc else None

    async def of_contact(self, contact_id: ObjectId) -> ErasureRecord | None:
        """The latest finished erasure that took this card."""
        doc = await self.collection.find_one(
            {"contact_ids": contact_id, "status": ErasureStatus.DONE.value}, sort=[("started_at", DESCENDING)]
        )
        return from_doc(ErasureRecord, doc) if doc else None

    async def unfinished(self, started_before: datetime) -> list[ErasureRecord]:
        """Erasures a stopped process left half done."""
        cursor = self.collection.find(
            {"status": ErasureStatus.RUNNING.value, "started_at": {"$lt": started_before}}, limit=100
        )
        return [from_doc(ErasureRecord, d) async for d in cursor]

    async def recent(self, now: datetime) -> list[ErasureRecord]:
        """Erasures finished a short while ago, to be swept once more."""
        cursor = self.collection.find({"sweep_until": {"$gt": now}}, limit=1000)
        return [from_doc(ErasureRecord, d) async for d in cursor]
