"""The `merges` collection: the audit of every merge, enough to undo it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from gateway.model import from_doc
from gateway.storage.counters import next_value


class MergeStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    UNDOING = "undoing"
    UNDONE = "undone"


@dataclass(frozen=True)
class MergeRecord:
    """One merge: who, when, why, and exactly what moved from the merged card to the kept one."""

    id: ObjectId
    number: int
    kept_id: ObjectId
    other_id: ObjectId
    status: MergeStatus
    reason: str
    created_at: datetime
    by: int | None = None
    # The merged card as it was when it was marked merged (identities included): what unmerge restores.
    other_before: Mapping[str, Any] = field(default_factory=dict)
    # What the merge added to the kept card that it did not have: what unmerge takes off again.
    added: Mapping[str, Any] = field(default_factory=dict)
    identities: tuple[str, ...] = ()
    threads: tuple[ObjectId, ...] = ()
    messages_moved: int = 0
    kept_thread_id: ObjectId | None = None
    closed_thread_id: ObjectId | None = None
    closed_operator_id: int | None = None
    # Cards created for a moving identity by a message that arrived mid-merge; folded in as well.
    strays: tuple[ObjectId, ...] = ()
    finished_at: datetime | None = None
    undone_at: datetime | None = None
    undone_by: int | None = None
    # Set when a card of the merge was erased: what moved is gone from the record, so it cannot be undone.
    erased_at: datetime | None = None


class MergeRepo:
    """Reads and writes merge records."""

    def __init__(self, collection: AsyncCollection, counters: AsyncCollection) -> None:
        self.collection = collection
        self.counters = counters

    # -- records -----------------------------------------------------------------------------

    async def start(
        self, kept_id: ObjectId, other_id: ObjectId, by: int | None, reason: str, now: datetime
    ) -> MergeRecord:
        """Write the record of a merge about to begin (status running), with its human number."""
        doc = {
            "_id": ObjectId(),
            "number": await next_value(self.counters, "merge_number"),
            "kept_id": kept_id,
            "other_id": other_id,
            "status": MergeStatus.RUNNING.value,
            "reason": reason,
            "by": by,
            "created_at": now,
        }
        await self.collection.insert_one(doc)
        return from_doc(MergeRecord, doc)

    async def discard(self, merge_id: ObjectId) -> None:
        """Forget a merge that never took effect."""
        await self.collection.delete_one({"_id": merge_id, "status": MergeStatus.RUNNING.value})

    async def get(self, merge_id: ObjectId) -> MergeRecord | None:
        doc = await self.collection.find_one({"_id": merge_id})
        return from_doc(MergeRecord, doc) if doc else None

    async def by_number(self, number: int) -> MergeRecord | None:
        doc = await self.collection.find_one({"number": number})
        return from_doc(MergeRecord, doc) if doc else None

    async def for_contact(self, contact_id: ObjectId, limit: int = 20) -> list[MergeRecord]:
        """Merges that kept or merged away this card, newest first."""
        cursor = self.collection.find(
            {"$or": [{"kept_id": contact_id}, {"other_id": contact_id}]}, sort=[("created_at", DESCENDING)], limit=limit
        )
        return [from_doc(MergeRecord, d) async for d in cursor]

    async def unfinished(self, started_before: datetime) -> list[MergeRecord]:
        """Merges and unmerges that a stopped process left half done."""
        cursor = self.collection.find(
            {
                "status": {"$in": [MergeStatus.RUNNING.value, MergeStatus.UNDOING.value]},
                "created_at": {"$lt": started_before},
            }
        )
        return [from_doc(MergeRecord, d) async for d in cursor]

    async def update(self, merge_id: ObjectId, fields: Mapping[str, Any], **ops: Any) -> MergeRecord | None:
        doc = await self.collection.find_one_and_update(
            {"_id": merge_id}, {"$set": dict(fields), **ops}, return_document=ReturnDocument.AFTER
        )
        return from_doc(MergeRecord, doc) if doc else None

    async def transition(
        self, merge_id: ObjectId, current: MergeStatus, status: MergeStatus, fields: Mapping[str, Any] | None = None
    ) -> MergeRecord | None:
        """Move a record from `current` to `status`; None when it is not in `current` (someone else did)."""
        doc = await self.collection.find_one_and_update(
            {"_id": merge_id, "status": current.value},
            {"$set": {**(fields or {}), "status": status.value}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(MergeRecord, doc) if doc else None

    # -- privacy -----------------------------------------------------------------------------

    @staticmethod
    def _of(contact_ids: list[ObjectId]) -> dict[str, Any]:
        return {"$or": [{"kept_id": {"$in": contact_ids}}, {"other_id": {"$in": contact_ids}}]}

    async def concerning(self, contact_ids: list[ObjectId]) -> list[MergeRecord]:
        """Every merge that kept or merged away one of these cards, oldest first."""
        cursor = self.collection.find(self._of(contact_ids), sort=[("created_at", ASCENDING)])
        return [from_doc(MergeRecord, d) async for d in cursor]

    async def strip(self, contact_ids: list[ObjectId], now: datetime) -> int:
        """Take what moved (cards, identities, phones, notes, the reason naming them) out of these cards' merges;
        what is left says only that a merge happened, when and by whom."""
        result = await self.collection.update_many(
            {**self._of(contact_ids), "erased_at": None},
            {
                "$set": {"erased_at": now, "reason": "", "other_before": {}, "added": {}, "identities": []},
            },
        )
        return result.modified_count
