"""The `contacts` collection: one card per person, with their channel identities."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
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

    async def create(self, identity: Identity, now: datetime, **fields: Any) -> tuple[Contact, bool]:
        """Create the card for a first-time identity; a concurrent creator's card wins (then False)."""
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
            return existing, False
        return from_doc(Contact, doc), True

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
        add_unverified: list[str] | None = None,
        remove_unverified: list[str] | None = None,
        push: Mapping[str, Any] | None = None,
        unset: list[str] | None = None,
    ) -> Contact | None:
        """Set fields, add phones/e-mails, push to lists and unset fields in one atomic update. New phones or
        e-mails mark the card unchecked (for duplicates) until `checked`."""
        update: dict[str, Any] = {"$set": {**(set_fields or {}), "updated_at": now}}
        if add_phones or add_emails:
            update["$set"]["unchecked_since"] = now
        add = {
            name: {"$each": values}
            for name, values in (
                ("phones", add_phones),
                ("emails", add_emails),
                ("other_phones", add_other_phones),
                ("unverified", add_unverified),
            )
            if values
        }
        if add:
            update["$addToSet"] = add
        if push:
            update["$push"] = dict(push)
        if remove_unverified:
            update["$pullAll"] = {"unverified": remove_unverified}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
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

    # -- search ------------------------------------------------------------------------------

    async def search(
        self, text: str, *, phone: str | None = None, among: list[ObjectId] | None = None, limit: int = 10
    ) -> list[Contact]:
        """Live cards whose names, usernames, phones or e-mails contain `text` (any case), recently updated first.

        `phone` (E.164) also matches exactly; `among` limits the search to these cards.
        """
        pattern = {"$regex": re.escape(text), "$options": "i"}
        fields = ("name", "identities.display_name", "identities.username", "phones", "other_phones", "emails")
        either: list[dict[str, Any]] = [{name: pattern} for name in fields]
        if phone:
            either.append({"phones": phone})
        query: dict[str, Any] = {"merged_into": None, "$or": either}
        if among is not None:
            query["_id"] = {"$in": among}
        cursor = self.collection.find(query, sort=[("updated_at", DESCENDING)], limit=limit)
        return [from_doc(Contact, d) async for d in cursor]

    # -- merges ------------------------------------------------------------------------------

    async def live(self, contact: Contact) -> Contact:
        """The card this contact was merged into (following merges), or the contact itself."""
        seen = {contact.id}
        while contact.merged_into is not None:
            target = await self.get(contact.merged_into)
            if target is None or target.id in seen:
                break
            seen.add(target.id)
            contact = target
        return contact

    async def owner(self, key: str) -> Contact | None:
        """The live card that answers for a channel identity."""
        contact = await self.by_identity(key)
        return await self.live(contact) if contact is not None else None

    async def add_verified_phone(self, contact_id: ObjectId, phone: str, now: datetime) -> Contact | None:
        """Record that a channel vouched for this phone (it is added to the phones as well)."""
        doc = await self.collection.find_one_and_update(
            {"_id": contact_id},
            {
                "$addToSet": {"phones": phone, "verified_phones": phone},
                "$set": {"updated_at": now, "unchecked_since": now},
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Contact, doc) if doc else None

    async def checked(self, contact_id: ObjectId, since: datetime) -> None:
        """The duplicate check of what the card gained up to `since` is done (a later gain keeps it unchecked)."""
        await self.collection.update_one(
            {"_id": contact_id, "unchecked_since": {"$lte": since}}, {"$unset": {"unchecked_since": ""}}
        )

    async def unchecked(self, before: datetime, limit: int) -> list[Contact]:
        """Cards unchecked since before `before`, oldest first."""
        cursor = self.collection.find(
            {"unchecked_since": {"$lt": before}}, sort=[("unchecked_since", ASCENDING)], limit=limit
        )
        return [from_doc(Contact, d) async for d in cursor]

    @staticmethod
    def _free(contact_id: ObjectId, token: ObjectId, stale_before: datetime) -> dict[str, Any]:
        """A live card that no merge holds (or only `token`, or a merge that died long ago)."""
        return {
            "_id": contact_id,
            "merged_into": None,
            "erase_id": None,  # a card being erased is merged with nothing
            "$or": [{"merge_lock": None}, {"merge_lock": token}, {"merge_lock_at": {"$lt": stale_before}}],
        }

    async def lock(
        self, contact_id: ObjectId, token: ObjectId, now: datetime, stale_before: datetime
    ) -> Contact | None:
        """Reserve a live card for the merge `token`; None when it is merged away or another merge holds it."""
        doc = await self.collection.find_one_and_update(
            self._free(contact_id, token, stale_before),
            {"$set": {"merge_lock": token, "merge_lock_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Contact, doc) if doc else None

    async def unlock(self, contact_id: ObjectId, token: ObjectId) -> None:
        await self.collection.update_one(
            {"_id": contact_id, "merge_lock": token}, {"$set": {"merge_lock": None, "merge_lock_at": None}}
        )

    async def mark_merged(
        self, contact_id: ObjectId, into: ObjectId, token: ObjectId, now: datetime, stale_before: datetime
    ) -> Contact | None:
        """Point a live, unreserved card at the card it is merged into; None when it is not free."""
        doc = await self.collection.find_one_and_update(
            self._free(contact_id, token, stale_before),
            {
                "$set": {
                    "merged_into": into,
                    "merge_id": token,
                    "merge_lock": None,
                    "merge_lock_at": None,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Contact, doc) if doc else None

    async def unmark_merged(
        self, contact_id: ObjectId, token: ObjectId, fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Make a card merged by `token` live again, setting `fields` in the same update."""
        result = await self.collection.update_one(
            {"_id": contact_id, "merge_id": token},
            {"$set": {**(fields or {}), "merged_into": None, "merge_id": None}},
        )
        return result.modified_count == 1

    async def pull_identity(self, contact_id: ObjectId, key: str) -> Identity | None:
        """Take an identity off a card; returns it, or None when the card does not hold it."""
        before = await self.collection.find_one_and_update(
            {"_id": contact_id, "identities.key": key}, {"$pull": {"identities": {"key": key}}}
        )
        if before is None:
            return None
        return from_doc(Identity, next(i for i in before["identities"] if i["key"] == key))

    async def push_identity(self, contact_id: ObjectId, identity: Identity, now: datetime) -> None:
        """Put an identity on a card; raises DuplicateKeyError when another card holds it."""
        await self.collection.update_one(
            {"_id": contact_id, "identities.key": {"$ne": identity.key}},
            {"$push": {"identities": to_doc(identity)}, "$set": {"updated_at": now}},
        )

    async def absorb(
        self,
        contact_id: ObjectId,
        now: datetime,
        *,
        set_fields: Mapping[str, Any] | None = None,
        add: Mapping[str, list[Any]] | None = None,
        pull: Mapping[str, list[Any]] | None = None,
        unset: list[str] | None = None,
    ) -> Contact | None:
        """Set, add to sets, remove from lists and unset fields of a card in one atomic update."""
        update: dict[str, Any] = {"$set": {**(set_fields or {}), "updated_at": now}}
        if each := {name: {"$each": values} for name, values in (add or {}).items() if values}:
            update["$addToSet"] = each
        if pull := {name: values for name, values in (pull or {}).items() if values}:
            update["$pullAll"] = pull
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        doc = await self.collection.find_one_and_update(
            {"_id": contact_id}, update, return_document=ReturnDocument.AFTER
        )
        return from_doc(Contact, doc) if doc else None

    # -- erasure -----------------------------------------------------------------------------

    async def merged_into_any(self, contact_ids: list[ObjectId]) -> list[Contact]:
        """Cards merged into any of these."""
        return [from_doc(Contact, d) async for d in self.collection.find({"merged_into": {"$in": contact_ids}})]

    async def claim_erasure(
        self, contact_id: ObjectId, token: ObjectId, now: datetime, stale_before: datetime
    ) -> Contact | None:
        """Reserve a card for the erasure `token`; None when a merge or another erasure holds it."""
        doc = await self.collection.find_one_and_update(
            {
                "_id": contact_id,
                "$and": [
                    {"$or": [{"merge_lock": None}, {"merge_lock_at": {"$lt": stale_before}}]},
                    {"$or": [{"erase_id": None}, {"erase_id": token}, {"erase_at": {"$lt": stale_before}}]},
                ],
            },
            {"$set": {"erase_id": token, "erase_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return from_doc(Contact, doc) if doc else None

    async def release_erasure(self, contact_ids: list[ObjectId], token: ObjectId) -> None:
        await self.collection.update_many(
            {"_id": {"$in": contact_ids}, "erase_id": token}, {"$set": {"erase_id": None, "erase_at": None}}
        )

    async def drop_identities(self, contact_id: ObjectId, token: ObjectId) -> None:
        """Take every identity off a card the erasure `token` holds: the next message from one starts a fresh card."""
        await self.collection.update_one({"_id": contact_id, "erase_id": token}, {"$set": {"identities": []}})

    async def delete(self, contact_ids: list[ObjectId]) -> int:
        result = await self.collection.delete_many({"_id": {"$in": contact_ids}})
        return result.deleted_count
