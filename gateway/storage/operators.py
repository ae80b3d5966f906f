"""The `operators` collection and the presence log behind time-in-status KPIs."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from gateway.config import OperatorEntry
from gateway.model import Operator, from_doc


class OperatorRepo:
    """Reads and writes operators."""

    def __init__(self, collection: AsyncCollection, presence_log: AsyncCollection) -> None:
        self.collection = collection
        self.presence_log = presence_log

    async def get(self, operator_id: int) -> Operator | None:
        doc = await self.collection.find_one({"_id": operator_id})
        return from_doc(Operator, doc) if doc else None

    async def all(self) -> list[Operator]:
        return [from_doc(Operator, d) async for d in self.collection.find({}, sort=[("name", ASCENDING)])]

    async def sync_config(self, entries: tuple[OperatorEntry, ...]) -> None:
        """Make the configured operators exist; their status and history are kept."""
        for entry in entries:
            await self.collection.update_one(
                {"_id": entry.telegram_id},
                {
                    "$set": {
                        "name": entry.name,
                        "username": entry.username.lstrip("@").lower() if entry.username else None,
                        "role": entry.role,
                        "groups": list(entry.groups),
                        "max_chats": entry.max_chats,
                        "active": True,
                    },
                    "$setOnInsert": {"status": "offline", "status_since": None},
                },
                upsert=True,
            )
