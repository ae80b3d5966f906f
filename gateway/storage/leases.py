"""The `leases` collection: which process holds each piece of work that must run in one process at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LeaseRepo:
    """One document per lease: its holder and when it lapses unless renewed."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def take(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew a lease; False while another holder's lease has not lapsed."""
        try:
            await self.collection.update_one(
                {"_id": name, "$or": [{"holder": holder}, {"until": {"$lte": now}}]},
                {"$set": {"holder": holder, "until": until, "renewed_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:  # the upsert met the other holder's document
            return False
        return True

    async def give_up(self, name: str, holder: str) -> None:
        """Let another process take the lease at once (its progress stays)."""
        await self.collection.update_one({"_id": name, "holder": holder}, {"$set": {"until": EPOCH}})

    async def progress(self, name: str) -> Any:
        """How far the leased work got (what its last holder recorded), or None."""
        doc = await self.collection.find_one({"_id": name}, {"progress": 1})
        return doc.get("progress") if doc else None

    async def record_progress(self, name: str, holder: str, value: Any) -> bool:
        """Record how far the work got; only the holder may (False: the lease is no longer ours)."""
        result = await self.collection.update_one({"_id": name, "holder": holder}, {"$set": {"progress": value}})
        return result.matched_count == 1

    async def held(self, names: list[str], now: datetime) -> set[str]:
        """Which of these leases someone holds now."""
        cursor = self.collection.find({"_id": {"$in": names}, "until": {"$gt": now}}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def holder(self, name: str, now: datetime) -> str | None:
        """Who holds a lease now (None when nobody does)."""
        doc = await self.collection.find_one({"_id": name, "until": {"$gt": now}})
        return doc["holder"] if doc else None
