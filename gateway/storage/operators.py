"""The `operators` collection and the presence log behind time-in-status KPIs."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gateway.config import OperatorEntry
from gateway.model import Operator, OperatorStatus, from_doc


class OperatorRepo:
    """Reads and writes operators; capacity is claimed with guarded single-document updates."""

    def __init__(self, collection: AsyncCollection, presence_log: AsyncCollection) -> None:
        self.collection = collection
        self.presence_log = presence_log

    async def get(self, operator_id: int) -> Operator | None:
        doc = await self.collection.find_one({"_id": operator_id})
        return from_doc(Operator, doc) if doc else None

    async def get_brief(self, operator_id: int) -> Operator | None:
        """The operator without their list of open chats (`chats` empty): cheap enough for every message."""
        doc = await self.collection.find_one({"_id": operator_id}, {"chats": 0})
        return from_doc(Operator, doc) if doc else None

    async def all(self, *, active_only: bool = True) -> list[Operator]:
        query = {"active": True} if active_only else {}
        return [from_doc(Operator, d) async for d in self.collection.find(query, sort=[("name", ASCENDING)])]

    async def by_username(self, username: str) -> Operator | None:
        doc = await self.collection.find_one({"username": username.lstrip("@").lower(), "active": True})
        return from_doc(Operator, doc) if doc else None

    async def online(self, group: str | None = None) -> list[Operator]:
        """Online operators, of a group when one is given."""
        query: dict[str, Any] = {"status": OperatorStatus.ONLINE.value, "active": True}
        if group:
            query["groups"] = group
        return [from_doc(Operator, d) async for d in self.collection.find(query)]

    async def sync_config(self, entries: tuple[OperatorEntry, ...]) -> None:
        """Create configured operators, and apply an entry again only when the file changed it.

        A supervisor's changes in the bot (role, capacity, removal) survive restarts; editing the
        entry in the config file wins over them. Status, load and history are always kept.
        """
        for entry in entries:
            config = {
                "name": entry.name,
                "username": entry.username.lstrip("@").lower() if entry.username else None,
                "role": entry.role,
                "groups": list(entry.groups),
                "max_chats": entry.max_chats,
            }
            current = await self.collection.find_one({"_id": entry.telegram_id}, {"config": 1})
            if current is None:
                with contextlib.suppress(DuplicateKeyError):  # another process created it just now
                    await self.collection.insert_one(
                        {
                            "_id": entry.telegram_id,
                            **config,
                            "config": config,
                            "active": True,
                            "status": OperatorStatus.OFFLINE.value,
                            "status_since": None,
                            "chats": [],
                        }
                    )
            elif current.get("config") != config:
                await self.collection.update_one(
                    {"_id": entry.telegram_id}, {"$set": {**config, "config": config, "active": True}}
                )

    async def upsert(self, operator_id: int, **fields: Any) -> Operator:
        """Create or update an operator; new operators start offline."""
        if fields.get("username"):
            fields["username"] = fields["username"].lstrip("@").lower()
        doc = await self.collection.find_one_and_update(
            {"_id": operator_id},
            {
                "$set": {**fields, "active": True},
                "$setOnInsert": {"status": OperatorStatus.OFFLINE.value, "status_since": None, "chats": []},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # an upsert returning the document after it always has one
        return from_doc(Operator, doc)

    async def update(self, operator_id: int, fields: dict[str, Any]) -> Operator | None:
        doc = await self.collection.find_one_and_update(
            {"_id": operator_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        return from_doc(Operator, doc) if doc else None

    async def set_status(
        self, operator_id: int, status: OperatorStatus, now: datetime
    ) -> tuple[Operator, OperatorStatus] | None:
        """Set a status; returns the operator and the status they had before."""
        before = await self.collection.find_one_and_update(
            {"_id": operator_id}, {"$set": {"status": status.value, "status_since": now}}
        )
        if before is None:
            return None
        previous = OperatorStatus(before.get("status", OperatorStatus.OFFLINE.value))
        if previous is not status:
            await self.presence_log.insert_one(
                {"operator_id": operator_id, "status": status.value, "previous": previous.value, "at": now}
            )
        return from_doc(Operator, {**before, "status": status.value, "status_since": now}), previous

    async def claim_slot(self, operator_id: int, thread_id: ObjectId, capacity: int, now: datetime) -> bool:
        """Take one chat slot if the operator is online and below capacity (one atomic update)."""
        result = await self.collection.update_one(
            # "chats.<capacity-1> does not exist" means fewer than `capacity` chats.
            {
                "_id": operator_id,
                "status": OperatorStatus.ONLINE.value,
                "active": True,
                f"chats.{capacity - 1}": {"$exists": False},
                "chats": {"$ne": thread_id},
            },
            {"$push": {"chats": thread_id}, "$set": {"last_assigned_at": now}},
        )
        return result.modified_count == 1

    async def release_slot(self, operator_id: int, thread_id: ObjectId) -> None:
        """Free the slot of a thread that left the operator (closed, transferred, released)."""
        await self.collection.update_one({"_id": operator_id}, {"$pull": {"chats": thread_id}})
        await self.collection.update_one(
            {"_id": operator_id, "active_thread_id": thread_id}, {"$set": {"active_thread_id": None}}
        )
