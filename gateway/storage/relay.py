"""The `relay` collection: which operator-chat message belongs to which thread and message; and `relay_showings`:
what was (being) shown in which operator chat, so each message or notice is shown there once, whichever
process shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError


@dataclass(frozen=True)
class RelayEntry:
    """A message in an operator's (or the supervisors') chat, tied to a thread."""

    chat_id: int
    message_id: int
    thread_id: ObjectId
    gateway_message_id: ObjectId | None = None
    at: datetime | None = None


class RelayRepo:
    """Maps bot and operator messages in Telegram chats to threads, for reply routing."""

    def __init__(self, collection: AsyncCollection, showings: AsyncCollection) -> None:
        self.collection = collection
        self.showings = showings

    async def add(
        self, chat_id: int, message_id: int, thread_id: ObjectId, gateway_message_id: ObjectId | None, now: datetime
    ) -> None:
        await self.collection.update_one(
            {"chat_id": chat_id, "message_id": message_id},
            {"$set": {"thread_id": thread_id, "gateway_message_id": gateway_message_id, "at": now}},
            upsert=True,
        )

    async def claim(
        self, chat_id: int, message_id: int, thread_id: ObjectId, gateway_message_id: ObjectId, now: datetime
    ) -> bool:
        """Tie an operator's message to the reply made from it; False when it was turned into one already."""
        try:
            await self.collection.insert_one(
                {"chat_id": chat_id, "message_id": message_id, "thread_id": thread_id,
                 "gateway_message_id": gateway_message_id, "at": now}
            )  # fmt: skip
        except DuplicateKeyError:
            return False
        return True

    async def find(self, chat_id: int, message_id: int) -> RelayEntry | None:
        doc = await self.collection.find_one({"chat_id": chat_id, "message_id": message_id})
        return _entry(doc)

    async def shown(self, gateway_message_ids: list[ObjectId]) -> set[tuple[int, ObjectId]]:
        """(chat, stored message) for every chat message that shows one of these stored messages."""
        cursor = self.collection.find(
            {"gateway_message_id": {"$in": gateway_message_ids}}, {"chat_id": 1, "gateway_message_id": 1}
        )
        return {(d["chat_id"], d["gateway_message_id"]) async for d in cursor}

    async def copy_of(self, chat_id: int, gateway_message_id: ObjectId) -> RelayEntry | None:
        """The latest message in a chat that shows (or is) a given stored message."""
        doc = await self.collection.find_one(
            {"chat_id": chat_id, "gateway_message_id": gateway_message_id}, sort=[("at", -1)]
        )
        return _entry(doc)

    async def original_of(self, chat_id: int, gateway_message_id: ObjectId) -> RelayEntry | None:
        """The first message in a chat about a stored message: the operator's own, when they wrote it there."""
        doc = await self.collection.find_one(
            {"chat_id": chat_id, "gateway_message_id": gateway_message_id}, sort=[("message_id", 1)]
        )
        return _entry(doc)

    async def of_threads(self, thread_ids: list[ObjectId]) -> list[RelayEntry]:
        """Every message in operators' (and the supervisors') chats about these threads."""
        return [e async for d in self.collection.find({"thread_id": {"$in": thread_ids}}) if (e := _entry(d))]

    async def forget_threads(self, thread_ids: list[ObjectId]) -> int:
        await self.showings.delete_many({"thread_id": {"$in": thread_ids}})
        result = await self.collection.delete_many({"thread_id": {"$in": thread_ids}})
        return result.deleted_count

    async def reserve(self, chat_id: int, key: str, thread_id: ObjectId, holder: str, now: datetime) -> bool:
        """Reserve showing `key` (a stored message's id, a notice) in a chat: True for the one caller that may
        show it, ever (until the reservation expires)."""
        try:
            await self.showings.insert_one(
                {"_id": _showing(chat_id, key), "thread_id": thread_id, "holder": holder, "at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def take_over(self, chat_id: int, key: str, holder: str, new_holder: str, now: datetime) -> bool:
        """Take a reservation over from a process that will not show it after all (it stopped, or gave up)."""
        result = await self.showings.update_one(
            {"_id": _showing(chat_id, key), "holder": holder}, {"$set": {"holder": new_holder, "at": now}}
        )
        return result.modified_count == 1

    async def holders(self, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
        """Who reserved each of these (chat, key) showings; the unreserved are left out."""
        ids = {_showing(chat_id, key): (chat_id, key) for chat_id, key in wanted}
        cursor = self.showings.find({"_id": {"$in": list(ids)}}, {"holder": 1})
        return {ids[d["_id"]]: d["holder"] async for d in cursor}


def _showing(chat_id: int, key: str) -> str:
    return f"{chat_id}:{key}"


def _entry(doc: dict | None) -> RelayEntry | None:
    if doc is None:
        return None
    return RelayEntry(doc["chat_id"], doc["message_id"], doc["thread_id"], doc.get("gateway_message_id"), doc.get("at"))
