"""The `canned` collection: the team's shared canned replies, typed as `!name` in a reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError


@dataclass(frozen=True)
class CannedReply:
    name: str
    text: str
    author_id: int | None
    author_name: str | None
    created_at: datetime
    updated_at: datetime


class Saved(StrEnum):
    CREATED = "created"
    REPLACED = "replaced"
    FORBIDDEN = "forbidden"


class CannedRepo:
    """Reads and writes canned replies; a name is unique (enforced by the index)."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def get(self, name: str) -> CannedReply | None:
        """A canned reply by name."""
        return _reply(await self.collection.find_one({"name": name}))

    async def all(self, limit: int = 200) -> list[CannedReply]:
        """Canned replies by name."""
        cursor = self.collection.find({}, sort=[("name", ASCENDING)], limit=limit)
        return [_reply(d) async for d in cursor]  # type: ignore[misc]

    async def texts(self, names: list[str]) -> dict[str, str]:
        """The texts of those names that exist."""
        cursor = self.collection.find({"name": {"$in": names}}, {"name": 1, "text": 1}, limit=len(names))
        return {d["name"]: d["text"] async for d in cursor}

    async def save(
        self, name: str, text: str, *, author_id: int, author_name: str, now: datetime, replace_any: bool
    ) -> Saved:
        """Create a reply, or replace one the author wrote (any one, with `replace_any`); one atomic upsert."""
        query: dict = {"name": name} if replace_any else {"name": name, "author_id": author_id}
        try:
            result = await self.collection.update_one(
                query,
                {
                    "$set": {"text": text, "updated_at": now, "updated_by": author_id},
                    "$setOnInsert": {"author_id": author_id, "author_name": author_name, "created_at": now},
                },
                upsert=True,
            )
        except DuplicateKeyError:  # the name exists and belongs to someone else
            return Saved.FORBIDDEN
        return Saved.CREATED if result.upserted_id is not None else Saved.REPLACED

    async def remove(self, name: str) -> bool:
        """Delete a canned reply; False when there was none."""
        result = await self.collection.delete_one({"name": name})
        return result.deleted_count == 1


def _reply(doc: dict | None) -> CannedReply | None:
    if doc is None:
        return None
    return CannedReply(
        name=doc["name"],
        text=doc["text"],
        author_id=doc.get("author_id"),
        author_name=doc.get("author_name"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )
