"""The `contacts` collection: one card per person, with their channel identities."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from gateway.model import Contact, Identity, Note, from_doc, to_doc


class ContactRepo:
    """Reads and writes contact cards."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def get(self, contact_id: ObjectId) -> Contact | None:
        doc = await self.collection.find_one({"_id": contact_id})
        return from_doc(Contact, doc) if doc else None

    async def by_identity(self, key: str) -> Contact | None:
        doc = await self.collection.find_one({"identities.key": key})
        return from_doc(Contact, doc) if doc else None

    async def by_phone(self, phone: str) -> list[Contact]:
        return [from_doc(Contact, d) async for d in self.collection.find({"phones": phone, "merged_into": None})]

    async def by_email(self, email: str) -> list[Contact]:
        return [from_doc(Contact, d) async for d in self.collection.find({"emails": email, "merged_into": None})]

    async def create(self, identity: Identity, now: datetime, **fields: Any) -> Contact:
        """Create the card for a first-time identity; a concurrent creator's card wins."""
        doc = {
            "_id": ObjectId(),
            "created_at": now,
            "updated_at": now,
            "name": None,
            "phones": [],
            "emails": [],
            "other_phones": [],
            "identities": [to_doc(identity)],
            "attributes": {},
            "notes": [],
            "blocked": False,
            "merged_into": None,
            **fields,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.by_identity(identity.key)
            if existing is None:
                raise
            return existing
        return from_doc(Contact, doc)

    async def update_identity(self, key: str, now: datetime, **fields: Any) -> Contact | None:
        """Set fields of one identity (display name, reachability, last inbound time)."""
        update = {f"identities.$.{name}": value for name, value in fields.items()}
        doc = await self.collection.find_one_and_update(
            {"identities.key": key},
            {"$set": {**update, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Contact, doc) if doc else None

    async def update(
        self,
        contact_id: ObjectId,
        now: datetime,
        *,
        set_fields: Mapping[str, Any] | None = None,
        add_phones: list[str] | None = None,
        add_emails: list[str] | None = None,
        add_other_phones: list[str] | None = None,
        push: Mapping[str, Any] | None = None,
    ) -> Contact | None:
        """Set fields, add phones/e-mails and push to lists in one atomic update."""
        update: dict[str, Any] = {"$set": {**(set_fields or {}), "updated_at": now}}
        add = {
            name: {"$each": values}
            for name, values in (("phones", add_phones), ("emails", add_emails), ("other_phones", add_other_phones))
            if values
        }
        if add:
            update["$addToSet"] = add
        if push:
            update["$push"] = dict(push)
        doc = await self.collection.find_one_and_update(
            {"_id": contact_id}, update, return_document=ReturnDocument.AFTER
        )
        return from_doc(Contact, doc) if doc else None

    async def add_note(self, contact_id: ObjectId, note: Note) -> None:
        await self.collection.update_one(
            {"_id": contact_id}, {"$push": {"notes": to_doc(note)}, "$set": {"updated_at": note.created_at}}
        )

    async def set_blocked(self, contact_id: ObjectId, blocked: bool, now: datetime) -> None:
        await self.collection.update_one({"_id": contact_id}, {"$set": {"blocked": blocked, "updated_at": now}})
