"""The `threads` collection: conversations, numbered for humans (#17)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gateway.model import Thread, ThreadStatus, from_doc, to_doc
from gateway.storage.counters import next_value

# What an erased thread names as the customer's identity: no channel, account or person.
ERASED_IDENTITY = "erased::"


class ThreadRepo:
    """Reads and writes threads; numbers come from an atomic counter."""

    def __init__(self, collection: AsyncCollection, counters: AsyncCollection) -> None:
        self.collection = collection
        self.counters = counters

    async def get(self, thread_id: ObjectId) -> Thread | None:
        doc = await self.collection.find_one({"_id": thread_id})
        return from_doc(Thread, doc) if doc else None

    async def by_number(self, number: int) -> Thread | None:
        doc = await self.collection.find_one({"number": number})
        return from_doc(Thread, doc) if doc else None

    async def open_for(self, contact_id: ObjectId) -> Thread | None:
        doc = await self.collection.find_one({"contact_id": contact_id, "open": True})
        return from_doc(Thread, doc) if doc else None

    async def latest_for(self, contact_id: ObjectId) -> Thread | None:
        doc = await self.collection.find_one({"contact_id": contact_id}, sort=[("created_at", DESCENDING)])
        return from_doc(Thread, doc) if doc else None

    async def count_for(self, contact_id: ObjectId) -> int:
        return await self.collection.count_documents({"contact_id": contact_id})

    async def open(
        self,
        contact_id: ObjectId,
        identity: str,
        channel: str,
        now: datetime,
        previous: Thread | None,
        *,
        unread: int = 0,
    ) -> tuple[Thread, bool]:
        """Open a thread for the contact (with `unread` customer messages), or return the one a concurrent call
        opened.

        Returns the thread and whether this call created it.
        """
        doc = {
            "_id": ObjectId(),
            "number": await next_value(self.counters, "thread_number"),
            "contact_id": contact_id,
            "channel": channel,
            "identity": identity,
            "status": ThreadStatus.QUEUED.value,
            "open": True,
            "operator_id": None,
            "group": previous.group if previous else None,
            "unread": unread,
            "created_at": now,
            "queued_at": now,
            "last_message_at": now,
            "previous_thread_id": previous.id if previous else None,
            "transfers": [],
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.open_for(contact_id)
            if existing is None:
                raise
            return existing, False
        return from_doc(Thread, doc), True

    async def touch_open(self, contact_id: ObjectId, identity: str, channel: str, now: datetime) -> Thread | None:
        """The contact's open thread, with one more unread customer message and where it came from; None when the
        contact has no open thread."""
        doc = await self.collection.find_one_and_update(
            {"contact_id": contact_id, "open": True},
            {"$inc": {"unread": 1}, "$set": {"last_message_at": now, "identity": identity, "channel": channel}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def untouch(self, thread_id: ObjectId) -> None:
        """Take back touch_open's unread count (the message was a re-delivery)."""
        await self.collection.update_one({"_id": thread_id, "unread": {"$gt": 0}}, {"$inc": {"unread": -1}})

    async def record_inbound(self, thread_id: ObjectId, identity: str, channel: str, now: datetime) -> Thread | None:
        """Count an unread customer message and remember where the customer wrote from."""
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id},
            {"$inc": {"unread": 1}, "$set": {"last_message_at": now, "identity": identity, "channel": channel}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def record_outbound(
        self, thread_id: ObjectId, now: datetime, *, by_operator: bool, read: bool = False
    ) -> None:
        """Note the time of a reply (`read`: nothing is unread any more); the first operator reply sets
        first_response_at once."""
        fields: dict[str, Any] = {"last_message_at": {"$literal": now}} | ({"unread": 0} if read else {})
        if by_operator:
            fields["first_response_at"] = {"$ifNull": ["$first_response_at", {"$literal": now}]}
        await self.collection.update_one({"_id": thread_id}, [{"$set": fields}])

    async def close(self, thread_id: ObjectId, now: datetime, by: int | None) -> Thread | None:
        """Close an open thread; returns None when it was already closed."""
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id, "open": True},
            {"$set": {"open": False, "status": ThreadStatus.CLOSED.value, "closed_at": now, "closed_by": by}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def claim(
        self, thread_id: ObjectId, operator_id: int, now: datetime, *, current: int | None = None
    ) -> Thread | None:
        """Give an open thread to an operator if its operator is still `current` (None: unassigned)."""
        fields = {"operator_id": operator_id, "status": ThreadStatus.ASSIGNED.value, "assigned_at": now}
        # Queue wait ends at the first assignment; later transfers do not extend it. (An update pipeline: one
        # command sets both.)
        first = {"first_assigned_at": {"$ifNull": ["$first_assigned_at", now]}}
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id, "open": True, "operator_id": current},
            [{"$set": fields | first}],
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def requeue(self, thread_id: ObjectId, current: int | None, group: str | None = None) -> Thread | None:
        """Put an open thread back in the queue if its operator is still `current`.

        The thread keeps its first queue time, so a conversation that was already being
        handled does not go to the back of the line.
        """
        fields: dict[str, Any] = {"operator_id": None, "status": ThreadStatus.QUEUED.value}
        if group is not None:
            fields["group"] = group
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id, "open": True, "operator_id": current},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Thread, doc) if doc else None

    async def queued(self, limit: int = 100) -> list[Thread]:
        """Waiting threads, longest wait first."""
        cursor = self.collection.find(
            {"open": True, "operator_id": None}, sort=[("queued_at", ASCENDING), ("number", ASCENDING)], limit=limit
        )
        return [from_doc(Thread, d) async for d in cursor]

    async def flag_busy_notice(self, thread_id: ObjectId) -> bool:
        """Set the busy-notice flag once; True only for the caller that set it."""
        result = await self.collection.update_one(
            {"_id": thread_id, "busy_notice_sent": {"$ne": True}}, {"$set": {"busy_notice_sent": True}}
        )
        return result.modified_count == 1

    async def add_transfer(self, thread_id: ObjectId, transfer: Mapping[str, Any]) -> None:
        await self.collection.update_one({"_id": thread_id}, {"$push": {"transfers": dict(transfer)}})

    async def update(self, thread_id: ObjectId, fields: Mapping[str, Any]) -> Thread | None:
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id}, {"$set": dict(fields)}, return_document=ReturnDocument.AFTER
        )
        return from_doc(Thread, doc) if doc else None

    async def find(
        self,
        *,
        status: ThreadStatus | None = None,
        operator_id: int | None = None,
        channel: str | None = None,
        contact_id: ObjectId | None = None,
        limit: int = 50,
        skip: int = 0,
    ) -> list[Thread]:
        """Threads matching the filters, most recently active first."""
        query: dict[str, Any] = {}
        if status is not None:
            query["status"] = status.value
        if operator_id is not None:
            query["operator_id"] = operator_id
        if channel is not None:
            query["channel"] = channel
        if contact_id is not None:
            query["contact_id"] = contact_id
        cursor = self.collection.find(query, sort=[("last_message_at", DESCENDING)], skip=skip, limit=limit)
        return [from_doc(Thread, d) async for d in cursor]

    async def many(self, thread_ids: list[ObjectId]) -> dict[ObjectId, Thread]:
        """Threads by id (missing ones left out)."""
        cursor = self.collection.find({"_id": {"$in": thread_ids}}, limit=len(thread_ids))
        return {d["_id"]: from_doc(Thread, d) async for d in cursor}

    async def handled_by(self, operator_id: int, *, limit: int = 1000) -> list[Thread]:
        """Threads that are or were assigned to an operator (now, or by a transfer), most recently active first."""
        query = {
            "$or": [
                {"operator_id": operator_id},
                {"transfers.from_operator": operator_id},
                {"transfers.to_operator": operator_id},
            ]
        }
        cursor = self.collection.find(query, sort=[("last_message_at", DESCENDING)], limit=limit)
        return [from_doc(Thread, d) async for d in cursor]

    async def count_open(self) -> int:
        return await self.collection.count_documents({"open": True})

    async def open_threads(self, limit: int = 200) -> list[Thread]:
        """Every open thread, lowest number first."""
        cursor = self.collection.find({"open": True}, sort=[("number", ASCENDING)], limit=limit)
        return [from_doc(Thread, d) async for d in cursor]

    async def by_topic(self, chat_id: int, topic_id: int) -> Thread | None:
        """The thread mirrored into a forum topic of the supervisors' chat."""
        doc = await self.collection.find_one({"topic_id": topic_id, "topic_chat_id": chat_id})
        return from_doc(Thread, doc) if doc else None

    async def visitor_left(self, thread_id: ObjectId, at: datetime) -> bool:
        """The visitor's last window closed at `at`: True when that makes them gone (no window opened since,
        in any process, and not marked gone already)."""
        result = await self.collection.update_one(
            {
                "_id": thread_id,
                "open": True,
                "visitor_left_at": None,
                "$or": [{"visitor_seen_at": None}, {"visitor_seen_at": {"$lt": at}}],
            },
            {"$set": {"visitor_left_at": at}},
        )
        return result.modified_count == 1

    async def visitor_back(self, thread_id: ObjectId, now: datetime) -> bool:
        """A visitor's window opened; True when they had been marked gone."""
        doc = await self.collection.find_one_and_update(
            {"_id": thread_id}, {"$set": {"visitor_seen_at": now, "visitor_left_at": None}}
        )
        return doc is not None and doc.get("visitor_left_at") is not None

    async def forget_topic(self, thread_id: ObjectId, chat_id: int, topic_id: int) -> bool:
        """The thread's topic was deleted: forget it, unless the thread has moved to another one meanwhile."""
        result = await self.collection.update_one(
            {"_id": thread_id, "topic_chat_id": chat_id, "topic_id": topic_id},
            {"$set": {"topic_chat_id": None, "topic_id": None}},
        )
        return result.modified_count == 1

    async def count_between(self, field: str, start: datetime, end: datetime) -> int:
        """Threads whose timestamp `field` (created_at, closed_at, ...) falls in [start, end)."""
        return await self.collection.count_documents({field: {"$gte": start, "$lt": end}})

    async def spans(
        self, within: str, since: str, until: str, start: datetime, end: datetime, limit: int = 100_000
    ) -> list[float]:
        """Seconds from `since` to `until` of threads whose `within` time falls in [start, end) and that have both."""
        query: dict[str, Any] = {since: {"$ne": None}, until: {"$ne": None}}
        query[within] = {"$gte": start, "$lt": end}  # may replace one of the above: a time in range is set
        cursor = self.collection.find(query, {since: 1, until: 1, "_id": 0}, limit=limit)
        return [(doc[until] - doc[since]).total_seconds() async for doc in cursor]

    # -- merges: threads given from one card to another ------------------------------------------

    async def ids_of(self, contact_id: ObjectId) -> list[ObjectId]:
        return [d["_id"] async for d in self.collection.find({"contact_id": contact_id}, {"_id": 1})]

    async def give_closed(self, thread_ids: Sequence[ObjectId], from_id: ObjectId, to_id: ObjectId) -> None:
        """Give closed threads to another card (an open one moves with give_open)."""
        await self.collection.update_many(
            {"_id": {"$in": list(thread_ids)}, "contact_id": from_id, "open": False}, {"$set": {"contact_id": to_id}}
        )

    async def give_open(self, thread_id: ObjectId, from_id: ObjectId, to_id: ObjectId) -> Thread | None:
        """Give an open thread to another card; None when it changed meanwhile or that card has one open."""
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": thread_id, "contact_id": from_id, "open": True},
                {"$set": {"contact_id": to_id}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the other card opened a thread meanwhile: join instead
            return None
        return from_doc(Thread, doc) if doc else None

    async def join(
        self, thread_id: ObjectId, from_id: ObjectId, into_id: ObjectId, to_id: ObjectId, now: datetime
    ) -> Thread | None:
        """Close `from_id`'s open thread as joined into another one, giving it to `to_id`; None when it is
        not open on that card any more."""
        doc = await self.collection.find_one_and_update(
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

    async def reopen_joined(self, thread_id: ObjectId, contact_id: ObjectId, now: datetime) -> Thread | None:
        """Reopen a joined thread for its card, in the queue; None when the card has an open thread."""
        try:
            doc = await self.collection.find_one_and_update(
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
        await self.collection.update_one({"_id": thread_id}, update)

    # -- privacy: erasure and retention ----------------------------------------------------------

    async def of_contacts(self, contact_ids: Sequence[ObjectId]) -> list[Thread]:
        cursor = self.collection.find({"contact_id": {"$in": list(contact_ids)}})
        return [from_doc(Thread, d) async for d in cursor]

    async def anonymize(self, thread: Thread, stand_in: ObjectId, now: datetime) -> None:
        """Keep only a thread's timings: no customer, no identity, no comment of an operator, no forum topic.

        `stand_in` takes the contact's place, so the KPIs still count the thread and nothing leads to the person.
        """
        transfers = [{**to_doc(transfer), "comment": None} for transfer in thread.transfers]
        await self.collection.update_one(
            {"_id": thread.id},
            {
                "$set": {
                    "contact_id": stand_in,
                    "identity": ERASED_IDENTITY,
                    "unread": 0,
                    "transfers": transfers,
                    "erased_at": now,
                },
                "$unset": {"topic_id": "", "topic_chat_id": "", "csat.comment": ""},
            },
        )

    async def expired(self, closed_before: datetime, *, limit: int, anonymized_too: bool) -> list[Thread]:
        """Threads closed before a time, longest closed first; `anonymized_too`: also those kept only as timings."""
        query: dict[str, Any] = {"closed_at": {"$lt": closed_before}}
        if not anonymized_too:
            query = {"erased_at": None, **query}
        cursor = self.collection.find(query, sort=[("closed_at", ASCENDING)], limit=limit)
        return [from_doc(Thread, d) async for d in cursor]

    async def delete(self, thread_ids: Sequence[ObjectId]) -> int:
        result = await self.collection.delete_many({"_id": {"$in": list(thread_ids)}})
        return result.deleted_count
