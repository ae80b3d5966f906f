"""The `messages` collection: every message in and out, with its delivery status."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from gateway.model import STATUS_RANK, Author, Direction, Kind, Message, MessageStatus, from_doc, to_doc

# What an anonymized message loses: everything but its thread, direction, author kind, timings and status.
PERSONAL_FIELDS = dict.fromkeys(
    ("media", "location", "shared_contact", "buttons", "template", "reply_to", "quote", "identity", "account",
     "channel_message_id", "forwarded_from", "payload", "error", "edits", "client_id", "notice", "joined_from"),
    "",
)  # fmt: skip


MEDIA_KINDS = (Kind.IMAGE, Kind.FILE, Kind.AUDIO, Kind.VIDEO, Kind.VOICE, Kind.STICKER)
# /history's filters: what the customer wrote, what operators sent, operators' notes, the gateway's records of
# what happened (transfers, releases, merges), files of either side.
HISTORY_FILTERS: dict[str, dict[str, Any]] = {
    "customer": {"direction": Direction.IN.value},
    "operator": {"direction": Direction.OUT.value, "author": Author.OPERATOR.value},
    "notes": {"direction": Direction.INTERNAL.value, "author": Author.OPERATOR.value},
    "actions": {"direction": Direction.INTERNAL.value, "author": Author.SYSTEM.value},
    "media": {"kind": {"$in": [k.value for k in MEDIA_KINDS]}},
}


class MessageRepo:
    """Reads and writes messages."""

    def __init__(self, collection: AsyncCollection, reports: AsyncCollection) -> None:
        self.collection = collection
        self.reports = reports

    async def insert(self, message: Message) -> Message:
        """Store a message; raises DuplicateKeyError when its channel id is already stored."""
        await self.collection.insert_one(to_doc(message))
        return message

    async def get(self, message_id: ObjectId) -> Message | None:
        doc = await self.collection.find_one({"_id": message_id})
        return from_doc(Message, doc) if doc else None

    async def by_channel_id(self, channel: str, account: str, channel_message_id: str) -> Message | None:
        doc = await self.collection.find_one(
            {"channel": channel, "account": account, "channel_message_id": channel_message_id}
        )
        return from_doc(Message, doc) if doc else None

    async def for_thread(self, thread_id: ObjectId, *, limit: int = 100, skip: int = 0) -> list[Message]:
        """A thread's messages, oldest first."""
        cursor = self.collection.find(
            {"thread_id": thread_id}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)], skip=skip, limit=limit
        )
        return [from_doc(Message, d) async for d in cursor]

    async def latest_for_thread(self, thread_id: ObjectId, *, limit: int) -> list[Message]:
        """A thread's latest messages, returned oldest first."""
        cursor = self.collection.find(
            {"thread_id": thread_id}, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], limit=limit
        )
        return list(reversed([from_doc(Message, d) async for d in cursor]))

    async def recent_for_identity(self, identity: str, *, limit: int) -> list[Message]:
        """The latest messages written from or to one channel identity (no notes), returned oldest first."""
        cursor = self.collection.find(
            {"identity": identity, "direction": {"$in": [Direction.IN.value, Direction.OUT.value]}},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
            limit=limit,
        )
        return list(reversed([from_doc(Message, d) async for d in cursor]))

    async def page_for_contact(
        self, contact_id: ObjectId, *, skip: int, limit: int, only: str | None = None
    ) -> list[Message]:
        """One page of the contact's messages across all their threads (notes too), newest first; `only` is one of
        HISTORY_FILTERS."""
        cursor = self.collection.find(
            {"contact_id": contact_id, **HISTORY_FILTERS.get(only or "", {})},
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
            skip=skip,
            limit=limit,
        )
        return [from_doc(Message, d) async for d in cursor]

    async def count_for_contact(self, contact_id: ObjectId, only: str | None = None) -> int:
        return await self.collection.count_documents({"contact_id": contact_id, **HISTORY_FILTERS.get(only or "", {})})

    async def search(self, text: str, *, threads: list[ObjectId] | None = None, limit: int = 10) -> list[Message]:
        """Messages whose text contains `text` (any case), newest first; `threads` limits where to look."""
        query: dict[str, Any] = {"text": {"$regex": re.escape(text), "$options": "i"}}
        if threads is not None:
            query["thread_id"] = {"$in": threads}
        cursor = self.collection.find(query, sort=[("created_at", DESCENDING), ("_id", DESCENDING)], limit=limit)
        return [from_doc(Message, d) async for d in cursor]

    async def update(self, message_id: ObjectId, fields: Mapping[str, Any], **ops: Any) -> Message | None:
        update: dict[str, Any] = {"$set": dict(fields), **ops}
        doc = await self.collection.find_one_and_update(
            {"_id": message_id}, update, return_document=ReturnDocument.AFTER
        )
        return from_doc(Message, doc) if doc else None

    async def set_translation(
        self, message_id: ObjectId, language: str, translation: str | None, target: str | None
    ) -> None:
        """Keep the language a message was detected in, and its translation into `target` (None: none needed)."""
        fields = {"language": language, "translation": translation, "translated_to": target}
        await self.collection.update_one({"_id": message_id}, {"$set": fields})

    async def record_edit(self, message_id: ObjectId, text: str, now: datetime) -> Message | None:
        """Replace the text of a message, keeping earlier versions in `edits`."""
        doc = await self.collection.find_one({"_id": message_id}, {"text": 1})
        if doc is None:
            return None
        return await self.update(message_id, {"text": text, "edited_at": now}, **{"$push": {"edits": doc["text"]}})

    async def set_wait_note(self, message_id: ObjectId, chat_id: int, note_id: int) -> None:
        """Remember the note an operator chat shows while this message waits to be sent."""
        await self.collection.update_one({"_id": message_id}, {"$set": {"wait_note": [chat_id, note_id]}})

    async def wait_note(self, message_id: ObjectId, *, take: bool = False) -> tuple[int, int] | None:
        """The waiting note of a message as (chat, message id); with `take`, it is forgotten too."""
        if take:
            doc = await self.collection.find_one_and_update(
                {"_id": message_id, "wait_note": {"$exists": True}}, {"$unset": {"wait_note": ""}}
            )
        else:
            doc = await self.collection.find_one({"_id": message_id, "wait_note": {"$exists": True}})
        note = doc.get("wait_note") if doc else None
        return (int(note[0]), int(note[1])) if note else None

    async def advance_status(
        self,
        channel: str,
        account: str,
        channel_message_id: str,
        status: MessageStatus,
        *,
        error: str | None,
        error_code: str | None,
        now: datetime,
        identity: str | None = None,
    ) -> Message | None:
        """Move an outbound message's status forward; a late, lower status changes nothing. With `identity`,
        only a message to that identity moves."""
        lower = [s.value for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
        fields: dict[str, Any] = {"status": status.value, "status_at": now}
        if status is MessageStatus.FAILED:
            fields |= {"error": error, "error_code": error_code}
        doc = await self.collection.find_one_and_update(
            {
                "channel": channel,
                "account": account,
                "channel_message_id": channel_message_id,
                "direction": Direction.OUT.value,
                "status": {"$in": lower},
                **({"identity": identity} if identity is not None else {}),
            },
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Message, doc) if doc else None

    async def park_report(self, update: Mapping[str, Any]) -> None:
        """Keep a delivery report that arrived before its message's channel id was stored."""
        await self.reports.insert_one(dict(update))

    async def take_reports(self, channel: str, account: str, channel_message_id: str) -> list[dict[str, Any]]:
        """The parked reports of a message, removed from the parking lot."""
        query = {"channel": channel, "account": account, "channel_message_id": channel_message_id}
        reports = await self.reports.find(query).to_list()
        if reports:
            await self.reports.delete_many({"_id": {"$in": [r["_id"] for r in reports]}})
        return reports

    async def requeue_failed(self, message_id: ObjectId, now: datetime) -> Message | None:
        """Give a failed outbound message a fresh set of attempts."""
        doc = await self.collection.find_one_and_update(
            {"_id": message_id, "direction": Direction.OUT.value, "status": MessageStatus.FAILED.value},
            {
                "$set": {
                    "status": MessageStatus.QUEUED.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "error": None,
                    "error_code": None,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Message, doc) if doc else None

    async def claim_due(self, now: datetime, lease_until: datetime) -> Message | None:
        """Take the oldest queued outbound message that is due, leasing it so no other worker sends it."""
        doc = await self.collection.find_one_and_update(
            {"status": MessageStatus.QUEUED.value, "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": lease_until}},
            sort=[("next_attempt_at", ASCENDING), ("_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Message, doc) if doc else None

    async def older_pending(self, message: Message) -> bool:
        """Whether an earlier outbound message of the same thread still waits to be sent."""
        doc = await self.collection.find_one(
            {
                "thread_id": message.thread_id,
                "status": MessageStatus.QUEUED.value,
                # Only messages still in the outbox wait to be sent (they have a next attempt).
                "next_attempt_at": {"$ne": None},
                # ObjectIds grow with creation time, and unlike created_at they never tie.
                "_id": {"$lt": message.id},
            },
            {"_id": 1},
        )
        return doc is not None

    # -- merges: messages given from one card or thread to another ------------------------------

    async def move_thread(
        self, from_thread: ObjectId, to_thread: ObjectId, contact_id: ObjectId, *, of: ObjectId | None = None
    ) -> int:
        """Move the messages of a joined thread (`of`: only those of that card) into the thread it joined,
        remembering where they came from."""
        result = await self.collection.update_many(
            {"thread_id": from_thread, **({"contact_id": of} if of else {})},
            {"$set": {"thread_id": to_thread, "contact_id": contact_id, "joined_from": from_thread}},
        )
        return result.modified_count

    async def inbound_between(self, after: ObjectId, before: ObjectId, limit: int) -> list[Message]:
        """Customer messages stored between two ids (exclusive), oldest first."""
        cursor = self.collection.find(
            {"_id": {"$gt": after, "$lt": before}, "direction": Direction.IN.value}, sort=[("_id", 1)], limit=limit
        )
        return [from_doc(Message, d) async for d in cursor]

    async def give_all(self, from_id: ObjectId, to_id: ObjectId) -> int:
        """Give every message of one card to another (their threads moved already)."""
        result = await self.collection.update_many({"contact_id": from_id}, {"$set": {"contact_id": to_id}})
        return result.modified_count

    async def return_joined(self, from_thread: ObjectId, to_thread: ObjectId, contact_id: ObjectId) -> None:
        """Undo move_thread_messages for messages that stayed where the join put them."""
        await self.collection.update_many(
            {"joined_from": from_thread, "thread_id": to_thread},
            {"$set": {"thread_id": from_thread, "contact_id": contact_id, "joined_from": None}},
        )

    async def of_identities(self, contact_id: ObjectId, identities: Sequence[str]) -> list[tuple[ObjectId, ObjectId]]:
        """(message id, thread id) of a card's messages written from or to the given identities."""
        cursor = self.collection.find(
            {"contact_id": contact_id, "identity": {"$in": list(identities)}}, {"_id": 1, "thread_id": 1}
        )
        return [(d["_id"], d["thread_id"]) async for d in cursor]

    async def in_threads_of_identities(
        self, thread_ids: Sequence[ObjectId], identities: Sequence[str], contact_id: ObjectId
    ) -> list[tuple[ObjectId, ObjectId]]:
        """(message id, thread id) of messages in these threads, written from or to the given identities,
        that are not yet given to `contact_id`."""
        cursor = self.collection.find(
            {
                "thread_id": {"$in": list(thread_ids)},
                "identity": {"$in": list(identities)},
                "contact_id": {"$ne": contact_id},
            },
            {"_id": 1, "thread_id": 1},
        )
        return [(d["_id"], d["thread_id"]) async for d in cursor]

    async def align_notes(self, thread_ids: Sequence[ObjectId], contact_id: ObjectId) -> None:
        """Internal notes (no identity) belong to the card of their thread."""
        await self.collection.update_many(
            {"thread_id": {"$in": list(thread_ids)}, "identity": None}, {"$set": {"contact_id": contact_id}}
        )

    async def give(self, message_ids: Sequence[ObjectId], contact_id: ObjectId) -> None:
        await self.collection.update_many({"_id": {"$in": list(message_ids)}}, {"$set": {"contact_id": contact_id}})

    async def move(self, message_ids: Sequence[ObjectId], thread_id: ObjectId, contact_id: ObjectId) -> None:
        await self.collection.update_many(
            {"_id": {"$in": list(message_ids)}}, {"$set": {"thread_id": thread_id, "contact_id": contact_id}}
        )

    # -- privacy: erasure and retention ----------------------------------------------------------

    async def count_on_channel(self, contact_ids: Sequence[ObjectId], channel: str) -> int:
        return await self.collection.count_documents({"contact_id": {"$in": list(contact_ids)}, "channel": channel})

    async def delete_of(
        self, *, contact_ids: Sequence[ObjectId] = (), thread_ids: Sequence[ObjectId] = (), batch: int
    ) -> int:
        """Delete every message of these cards and threads, `batch` at a time: no one command holds the storage long."""
        deleted = 0
        for field, ids in (("contact_id", contact_ids), ("thread_id", thread_ids)):
            while ids:
                found = [
                    d["_id"] async for d in self.collection.find({field: {"$in": list(ids)}}, {"_id": 1}, limit=batch)
                ]
                if found:
                    deleted += (await self.collection.delete_many({"_id": {"$in": found}})).deleted_count
                if len(found) < batch:
                    break
        return deleted

    async def anonymize_thread(self, thread_id: ObjectId, stand_in: ObjectId, now: datetime, *, batch: int) -> int:
        """Strip a thread's messages down to who wrote when, with what status (`batch` at a time)."""
        stripped = 0
        while True:
            cursor = self.collection.find({"thread_id": thread_id, "erased_at": None}, {"_id": 1}, limit=batch)
            found = [d["_id"] async for d in cursor]
            if found:
                result = await self.collection.update_many(
                    {"_id": {"$in": found}},
                    {"$set": {"contact_id": stand_in, "text": "", "erased_at": now}, "$unset": PERSONAL_FIELDS},
                )
                stripped += result.modified_count
            if len(found) < batch:
                return stripped
