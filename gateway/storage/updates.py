"""The `handled_updates` collection: which bot updates were handled, so a re-delivered one is not handled twice."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError


class HandledUpdates:
    """Claims updates by key (`operator:<update_id>`); entries expire (TTL index) after Telegram stops retrying."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def claim(self, key: str, now: datetime, stale_before: datetime) -> bool:
        """True for the one caller that may handle the update now; False for a duplicate, or while another
        caller handles it. A claim that was never finished (its process stopped) can be taken over when stale."""
        try:
            await self.collection.insert_one({"_id": key, "at": now, "done": False})
            return True
        except DuplicateKeyError:
            taken = await self.collection.update_one(
                {"_id": key, "done": False, "at": {"$lt": stale_before}}, {"$set": {"at": now}}
            )
            return taken.modified_count == 1

    async def finish(self, key: str) -> None:
        """The update was handled: every later delivery of it is a duplicate."""
        await self.collection.update_one({"_id": key}, {"$set": {"done": True}})

    async def release(self, key: str) -> None:
        """Handling failed before it did anything lasting: let the next delivery try again."""
        await self.collection.delete_one({"_id": key, "done": False})
