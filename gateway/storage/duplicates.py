"""The `duplicates` collection: pairs of cards that share a phone or e-mail, kept until someone decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gateway.model import from_doc, to_doc


class DuplicateStatus(StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"  # "not the same person": never offered again for this pair
    MERGED = "merged"
    MOVED = "moved"  # one card was merged into a third; the pair now lives on under the kept card


@dataclass(frozen=True)
class Match:
    """One exact match between two cards: a normalised phone or e-mail both have."""

    kind: str  # "phone" | "email"
    value: str
    verified: bool = False  # a channel vouched for the phone on both cards
    unverified: bool = False  # a customer typed it on one of the cards (in the widget): nobody vouches for it


@dataclass(frozen=True)
class Duplicate:
    """Two live cards that are probably one person, and why we think so."""

    id: ObjectId
    pair: str
    contact_ids: tuple[ObjectId, ...]
    status: DuplicateStatus
    created_at: datetime
    updated_at: datetime
    matches: tuple[Match, ...] = ()
    # How alike the two names are (0-100, rapidfuzz); None when a card has no name. Ranks, never matches.
    similarity: int | None = None
    rank: int = 0
    decided_by: int | None = None
    decided_at: datetime | None = None
    merge_id: ObjectId | None = None

    @property
    def reason(self) -> str:
        """Why the cards look like one person, e.g. "same phone +14155552671; names 92% alike"."""
        parts = [
            f"same {'e-mail' if m.kind == 'email' else 'phone'} {m.value}"
            + (" (verified on both)" if m.verified else "")
            + (" (unverified: typed in the widget)" if m.unverified else "")
            for m in self.explained()
        ]
        if self.similarity is not None:
            parts.append(f"names {self.similarity}% alike")
        return "; ".join(parts)

    def explained(self) -> list[Match]:
        """The matches in the order they are explained: phones, then e-mails (not the order they were found)."""
        return sorted(self.matches, key=lambda m: (m.kind != "phone", m.value))

    def other(self, contact_id: ObjectId) -> ObjectId:
        """The card of the pair that is not `contact_id`."""
        return self.contact_ids[1] if self.contact_ids[0] == contact_id else self.contact_ids[0]


def pair_key(a: ObjectId, b: ObjectId) -> str:
    """The same key for (a, b) and (b, a)."""
    return ":".join(sorted((str(a), str(b))))


def rank_of(matches: int, similarity: int | None) -> int:
    """More exact matches first, then more alike names."""
    return matches * 1000 + (similarity or 0)


class DuplicateRepo:
    """Reads and writes duplicate duplicates; one document per pair of cards, ever."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def get(self, duplicate_id: ObjectId) -> Duplicate | None:
        doc = await self.collection.find_one({"_id": duplicate_id})
        return from_doc(Duplicate, doc) if doc else None

    async def for_pair(self, a: ObjectId, b: ObjectId) -> Duplicate | None:
        doc = await self.collection.find_one({"pair": pair_key(a, b)})
        return from_doc(Duplicate, doc) if doc else None

    async def record(
        self, a: ObjectId, b: ObjectId, match: Match, similarity: int | None, now: datetime
    ) -> tuple[Duplicate, bool]:
        """Remember that a and b share `match`; returns the duplicate and whether it is new.

        The unique `pair` index makes two detectors racing on the same pair create one duplicate.
        """
        doc = {
            "_id": ObjectId(),
            "pair": pair_key(a, b),
            "contact_ids": sorted([a, b], key=str),
            "status": DuplicateStatus.OPEN.value,
            "matches": [to_doc(match)],
            "similarity": similarity,
            "rank": rank_of(1, similarity),
            "created_at": now,
            "updated_at": now,
            "decided_by": None,
            "decided_at": None,
            "merge_id": None,
        }
        try:
            await self.collection.insert_one(doc)
            return from_doc(Duplicate, doc), True
        except DuplicateKeyError:
            pass
        existing = await self.collection.find_one_and_update(
            {"pair": doc["pair"], "matches": {"$ne": to_doc(match)}},
            {"$push": {"matches": to_doc(match)}, "$set": {"updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if existing is not None:
            existing = await self.collection.find_one_and_update(
                {"_id": existing["_id"]},
                {"$set": {"rank": rank_of(len(existing["matches"]), existing.get("similarity"))}},
                return_document=ReturnDocument.AFTER,
            )
        else:
            existing = await self.collection.find_one({"pair": doc["pair"]})
        assert existing is not None  # the insert collided with it, and duplicates are never deleted
        return from_doc(Duplicate, existing), False

    async def mark_offered(self, duplicate_id: ObjectId, operator_id: int) -> bool:
        """Note that an operator was shown the duplicate; False if they had been already."""
        result = await self.collection.update_one(
            {"_id": duplicate_id, "offered_to": {"$ne": operator_id}}, {"$push": {"offered_to": operator_id}}
        )
        return result.modified_count == 1

    async def pending(self, limit: int = 50) -> list[Duplicate]:
        """Open duplicates, strongest first."""
        cursor = self.collection.find(
            {"status": DuplicateStatus.OPEN.value}, sort=[("rank", DESCENDING), ("created_at", DESCENDING)], limit=limit
        )
        return [from_doc(Duplicate, d) async for d in cursor]

    async def for_contact(self, contact_id: ObjectId, *, status: DuplicateStatus | None = None) -> list[Duplicate]:
        """Candidates involving a card, strongest first."""
        query: dict[str, Any] = {"contact_ids": contact_id}
        if status is not None:
            query["status"] = status.value
        cursor = self.collection.find(query, sort=[("rank", DESCENDING), ("created_at", DESCENDING)])
        return [from_doc(Duplicate, d) async for d in cursor]

    async def decide(
        self,
        duplicate_id: ObjectId,
        status: DuplicateStatus,
        by: int | None,
        now: datetime,
        merge_id: ObjectId | None = None,
    ) -> Duplicate | None:
        """Close an open duplicate with a decision; None when it was already decided."""
        doc = await self.collection.find_one_and_update(
            {"_id": duplicate_id, "status": DuplicateStatus.OPEN.value},
            {
                "$set": {
                    "status": status.value,
                    "decided_by": by,
                    "decided_at": now,
                    "merge_id": merge_id,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Duplicate, doc) if doc else None

    async def settle_pair(
        self,
        a: ObjectId,
        b: ObjectId,
        status: DuplicateStatus,
        by: int | None,
        now: datetime,
        merge_id: ObjectId | None = None,
    ) -> None:
        """Record the outcome for a pair, creating its duplicate when nobody had found one."""
        await self.collection.update_one(
            {"pair": pair_key(a, b)},
            {
                "$set": {
                    "status": status.value,
                    "decided_by": by,
                    "decided_at": now,
                    "merge_id": merge_id,
                    "updated_at": now,
                },
                "$setOnInsert": {
                    "contact_ids": sorted([a, b], key=str),
                    "matches": [],
                    "similarity": None,
                    "rank": 0,
                    "created_at": now,
                },
            },
            upsert=True,
        )

    async def move(self, other_id: ObjectId, kept_id: ObjectId, now: datetime) -> None:
        """Carry the open and dismissed duplicates of a merged card over to the card it was merged into.

        A dismissal wins over an open duplicate for the same pair: "not the same person" still holds.
        """
        async for doc in self.collection.find({"contact_ids": other_id, "status": {"$in": ["open", "dismissed"]}}):
            duplicate = from_doc(Duplicate, doc)
            third = duplicate.other(other_id)
            await self.collection.update_one({"_id": duplicate.id}, {"$set": {"status": "moved", "updated_at": now}})
            if third == kept_id:
                continue
            carried = {
                "status": duplicate.status.value,
                "matches": [to_doc(m) for m in duplicate.matches],
                "similarity": duplicate.similarity,
                "rank": duplicate.rank,
                "decided_by": duplicate.decided_by,
                "decided_at": duplicate.decided_at,
                "updated_at": now,
            }
            existing = await self.for_pair(kept_id, third)
            if existing is None:
                try:
                    await self.collection.insert_one(
                        {
                            "_id": ObjectId(),
                            "pair": pair_key(kept_id, third),
                            "contact_ids": sorted([kept_id, third], key=str),
                            "created_at": duplicate.created_at,
                            "merge_id": None,
                            **carried,
                        }
                    )
                    continue
                except DuplicateKeyError:
                    existing = await self.for_pair(kept_id, third)
            if (
                existing is not None
                and duplicate.status is DuplicateStatus.DISMISSED
                and existing.status is DuplicateStatus.OPEN
            ):
                await self.collection.update_one({"_id": existing.id, "status": "open"}, {"$set": carried})

    # -- privacy -----------------------------------------------------------------------------

    async def concerning(self, contact_ids: list[ObjectId]) -> list[Duplicate]:
        """Every candidate pair with one of these cards, whatever was decided."""
        cursor = self.collection.find({"contact_ids": {"$in": contact_ids}})
        return [from_doc(Duplicate, d) async for d in cursor]

    async def forget(self, contact_ids: list[ObjectId]) -> int:
        """Delete every candidate pair with one of these cards (they are being erased)."""
        result = await self.collection.delete_many({"contact_ids": {"$in": contact_ids}})
        return result.deleted_count
