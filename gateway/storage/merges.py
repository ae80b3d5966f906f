"""The `merges` collection (the audit of every merge, enough to undo it) and the moves a merge makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gateway.model import Thread, ThreadStatus, from_doc


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
    dropped_operator_id: int | None = None
    # Cards created for a moving identity by a message that arrived mid-merge; folded in as well.
    strays: tuple[ObjectId, ...] = ()
    finished_at: datetime | None = None
    undone_at: datetime | None = None
    undone_by: int | None = None


class MergeRepo:
    """Merge records, plus the guarded moves of threads and messages between cards."""

    def __init__(
        self,
        collection: AsyncCollection,
        counters: AsyncCollection,
        threads: AsyncCollection,
        messages: AsyncCollection,
    ) -> None:
        self.collection = collection
        self.counters = counters
        self.threads = threads
        self.messages = messages

    # -- records -----------------------------------------------------------------------------

    async def start(
        self, kept_id: ObjectId, other_id: ObjectId, by: int | None, reason: str, now: datetime
    ) -> MergeRecord:
        """Write the record of a merge about to begin (status running), with its human number."""
        counter = await self.counters.find_one_and_update(
            {"_id": "merge_number"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        doc = {
            "_id": ObjectId(),
            "number": int(counter["seq"]),
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

    # -- threads and messages ----------------------------------------------------------------

    async def thread_ids(self, contact_id: ObjectId) -> list[ObjectId]:
        return [d["_id"] async for d in self.threads.find({"contact_id": contact_id}, {"_id": 1})]

    async def repoint_threads(self, thread_ids: Sequence[ObjectId], from_id: ObjectId, to_id: ObjectId) -> None:
        """Give closed threads to another card (an open one moves with move_open_thread)."""
        await self.threads.update_many(
            {"_id": {"$in": list(thread_ids)}, "contact_id": from_id, "open": False}, {"$set": {"contact_id": to_id}}
        )

    async def move_open_thread(self, thread_id: ObjectId, from_id: ObjectId, to_id: ObjectId) -> Thread | None:
        """Give an open thread to another card; None when it changed meanwhile or that card has one open."""
        try:
            doc = await self.threads.find_one_and_update(
                {"_id": thread_id, "contact_id": from_id, "open": True},
                {"$set": {"contact_id": to_id}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the other card opened a thread meanwhile: join instead
            return None
        return from_doc(Thread, doc) if doc else None

    async def join_thread(
        self, thread_id: ObjectId, from_id: ObjectId, into_id: ObjectId, to_id: ObjectId, now: datetime
    ) -> Thread | None:
        """Close `from_id`'s open thread as joined into another one, giving it to `to_id`; None when it is
        not open on that card any more."""
        doc = await self.threads.find_one_and_update(
            {"_id": thread_id, "contact_id": from_id, "open": True},
            {
                "$set": {
                    "open": False,
                    "status": ThreadStatus.CLOSED.value,
                    "closed_at": now,
                    "closed_by": None,
                    "joined_into": into_id,
                    "contact_id": to_id,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def reopen_thread(self, thread_id: ObjectId, contact_id: ObjectId, now: datetime) -> Thread | None:
        """Reopen a joined thread for its card, in the queue; None when the card has an open thread."""
        try:
            doc = await self.threads.find_one_and_update(
                {"_id": thread_id, "open": False},
                {
                    "$set": {
                        "open": True,
                        "status": ThreadStatus.QUEUED.value,
                        "contact_id": contact_id,
                        "operator_id": None,
                        "closed_at": None,
                        "closed_by": None,
                        "joined_into": None,
                        "queued_at": now,
                        "busy_notice_sent": False,
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None
        return from_doc(Thread, doc) if doc else None

    async def add_unread(self, thread_id: ObjectId, count: int, last_message_at: datetime | None) -> None:
        update: dict[str, Any] = {"$inc": {"unread": count}}
        if last_message_at is not None:
            update["$max"] = {"last_message_at": last_message_at}
        await self.threads.update_one({"_id": thread_id}, update)

    async def move_thread_messages(self, from_thread: ObjectId, to_thread: ObjectId, contact_id: ObjectId) -> int:
        """Move every message of a joined thread into the thread it joined, remembering where it came from."""
        result = await self.messages.update_many(
            {"thread_id": from_thread},
            {"$set": {"thread_id": to_thread, "contact_id": contact_id, "joined_from": from_thread}},
        )
        return result.modified_count

    async def repoint_messages(self, from_id: ObjectId, to_id: ObjectId) -> int:
        """Give every message of one card to another (their threads moved already)."""
        result = await self.messages.update_many({"contact_id": from_id}, {"$set": {"contact_id": to_id}})
        return result.modified_count

    async def return_joined_messages(self, from_thread: ObjectId, to_thread: ObjectId, contact_id: ObjectId) -> None:
        """Undo move_thread_messages for messages that stayed where the join put them."""
        await self.messages.update_many(
            {"joined_from": from_thread, "thread_id": to_thread},
            {"$set": {"thread_id": from_thread, "contact_id": contact_id, "joined_from": None}},
        )

    async def messages_of_identities(
        self, contact_id: ObjectId, identities: Sequence[str]
    ) -> list[tuple[ObjectId, ObjectId]]:
        """(message id, thread id) of a card's messages written from or to the given identities."""
        cursor = self.messages.find(
            {"contact_id": contact_id, "identity": {"$in": list(identities)}}, {"_id": 1, "thread_id": 1}
        )
        return [(d["_id"], d["thread_id"]) async for d in cursor]

    async def messages_in_threads(
        self, thread_ids: Sequence[ObjectId], identities: Sequence[str], contact_id: ObjectId
    ) -> list[tuple[ObjectId, ObjectId]]:
        """(message id, thread id) of messages in these threads, written from or to the given identities,
        that are not yet given to `contact_id`."""
        cursor = self.messages.find(
            {
                "thread_id": {"$in": list(thread_ids)},
                "identity": {"$in": list(identities)},
                "contact_id": {"$ne": contact_id},
            },
            {"_id": 1, "thread_id": 1},
        )
        return [(d["_id"], d["thread_id"]) async for d in cursor]

    async def align_internal(self, thread_ids: Sequence[ObjectId], contact_id: ObjectId) -> None:
        """Internal notes (no identity) belong to the card of their thread."""
        await self.messages.update_many(
            {"thread_id": {"$in": list(thread_ids)}, "identity": None}, {"$set": {"contact_id": contact_id}}
        )

    async def move_messages_contact(self, message_ids: Sequence[ObjectId], contact_id: ObjectId) -> None:
        await self.messages.update_many({"_id": {"$in": list(message_ids)}}, {"$set": {"contact_id": contact_id}})

    async def move_messages(self, message_ids: Sequence[ObjectId], thread_id: ObjectId, contact_id: ObjectId) -> None:
        await self.messages.update_many(
            {"_id": {"$in": list(message_ids)}}, {"$set": {"thread_id": thread_id, "contact_id": contact_id}}
        )
