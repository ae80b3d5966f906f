"""Duplicate cards: other live cards with a phone or e-mail a card just gained, kept until someone decides."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from bson import ObjectId

from gateway.config import Settings
from gateway.contacts import name_similarity
from gateway.events import ContactChanged, DuplicateFound, EventBus
from gateway.merge import MergeOutcome, Merger, may_decide
from gateway.model import Contact, Thread, utcnow
from gateway.rounds import in_rounds
from gateway.storage.duplicates import Duplicate, DuplicateStatus, Match

if TYPE_CHECKING:
    from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

SWEEP_LEASE = "duplicate-sweep"
# A card unchecked this long was left by a process that stopped before checking it; the sweep checks it.
SWEEP_AFTER = timedelta(seconds=30)
SWEEP_EVERY_SECONDS = 10.0
SWEEP_BATCH = 100


@dataclass(frozen=True)
class DuplicateCards:
    """A duplicate with both cards and their conversations (open, else latest): what the bot shows."""

    duplicate: Duplicate
    contact: Contact
    other: Contact
    contact_thread: Thread | None
    other_thread: Thread | None


class DismissOutcome(StrEnum):
    DISMISSED = "dismissed"
    ALREADY_DECIDED = "already_decided"
    UNKNOWN = "unknown"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class DismissResult:
    """What "Not the same person" did."""

    outcome: DismissOutcome
    duplicate: Duplicate | None = None


class DuplicateFinder:
    """Finds other live cards with a phone or e-mail a card just gained, and keeps them as merge duplicates.

    An exact phone or e-mail match makes a duplicate; names only rank and explain it. Nothing is merged
    silently, except with `[contacts] auto_merge_verified` when a channel vouched for the phone on both cards.
    """

    def __init__(self, store: Storage, bus: EventBus, settings: Settings, merger: Merger) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.merger = merger

    def subscribe(self) -> None:
        """Check every card that gains a phone or e-mail."""
        self.bus.subscribe(ContactChanged, self._on_contact_changed)

    async def check(
        self, contact: Contact, phones: Iterable[str] = (), emails: Iterable[str] = (), *, verified: bool = False
    ) -> list[Duplicate]:
        """Record a duplicate for every live card sharing one of these phones or e-mails (indexed lookups).

        New duplicates are published as DuplicateFound; a pair dismissed before stays dismissed.
        """
        now = utcnow()
        found: list[Duplicate] = []
        lookups: list[tuple[str, str, Callable[[str], Awaitable[list[Contact]]]]]
        lookups = [("phone", p, self.store.contacts.by_phone) for p in phones]
        lookups += [("email", e, self.store.contacts.by_email) for e in emails]
        for kind, value, lookup in lookups:
            for other in await lookup(value):
                if other.id == contact.id:
                    continue
                both_verified = (
                    kind == "phone" and verified and value in contact.verified_phones and value in other.verified_phones
                )
                duplicate, created = await self.store.duplicates.record(
                    contact.id,
                    other.id,
                    Match(kind, value, both_verified, value in contact.unverified or value in other.unverified),
                    name_similarity(contact, other),
                    now,
                )
                found.append(duplicate)
                if (
                    both_verified
                    and self.settings.contacts.auto_merge_verified
                    and duplicate.status is DuplicateStatus.OPEN
                ):
                    result = await self.merger.merge_pair(
                        contact.id, other.id, by=None, reason="verified phone on both channels"
                    )
                    if result.outcome in (MergeOutcome.MERGED, MergeOutcome.ALREADY_MERGED):
                        return found  # this card may be merged away now; the kept card is checked on its own
                if created:
                    logger.info("possible duplicate: contacts %s and %s (%s)", contact.id, other.id, duplicate.reason)
                    offer = await self.cards(duplicate, contact.id)
                    if offer is not None:
                        self.bus.publish(
                            DuplicateFound(
                                duplicate=offer.duplicate,
                                contact=offer.contact,
                                other=offer.other,
                                contact_thread=offer.contact_thread,
                                other_thread=offer.other_thread,
                            )
                        )
        return found

    async def cards(self, duplicate: Duplicate, contact_id: ObjectId | None = None) -> DuplicateCards | None:
        """The duplicate with both cards (as they are now) and their conversations; `contact_id` comes first."""
        first = contact_id or duplicate.contact_ids[0]
        contact = await self.store.contacts.get(first)
        other = await self.store.contacts.get(duplicate.other(first))
        if contact is None or other is None:
            return None
        threads = [
            await self.store.threads.open_for(c.id) or await self.store.threads.latest_for(c.id)
            for c in (contact, other)
        ]
        return DuplicateCards(duplicate, contact, other, threads[0], threads[1])

    async def pending(self, limit: int = 20) -> list[DuplicateCards]:
        """Open duplicates, strongest first (/duplicates)."""
        offers = [await self.cards(c) for c in await self.store.duplicates.pending(limit)]
        return [o for o in offers if o is not None]

    async def for_contact(self, contact_id: ObjectId) -> list[DuplicateCards]:
        """Open duplicates of one card, strongest first (for its card in the operator bot)."""
        duplicates = await self.store.duplicates.for_contact(contact_id, status=DuplicateStatus.OPEN)
        offers = [await self.cards(c, contact_id) for c in duplicates]
        return [o for o in offers if o is not None]

    async def dismiss(self, duplicate_id: ObjectId, *, by: int | None) -> DismissResult:
        """ "Not the same person": remembered for the pair, never offered again."""
        duplicate = await self.store.duplicates.get(duplicate_id)
        if duplicate is None:
            return DismissResult(DismissOutcome.UNKNOWN)
        if by is not None and not await may_decide(self.store, by, duplicate.contact_ids):
            return DismissResult(DismissOutcome.NOT_ALLOWED, duplicate)
        decided = await self.store.duplicates.decide(duplicate.id, DuplicateStatus.DISMISSED, by, utcnow())
        if decided is None:
            return DismissResult(DismissOutcome.ALREADY_DECIDED, await self.store.duplicates.get(duplicate_id))
        logger.info("contacts %s and %s are not the same person (operator %s)", *decided.contact_ids, by)
        return DismissResult(DismissOutcome.DISMISSED, decided)

    async def _on_contact_changed(self, event: ContactChanged) -> None:
        contact = await self.store.contacts.get(event.contact.id)
        if contact is None or contact.merged_into is not None:
            return
        await self.check(contact, event.new_phones, event.new_emails, verified=event.phone_verified)
        if event.contact.unchecked_since is not None:
            await self.store.contacts.checked(contact.id, event.contact.unchecked_since)

    async def run(self) -> None:
        """Sweep every few seconds (run it under the lease SWEEP_LEASE, so that one process does)."""

        async def one_round() -> bool:
            return await self.sweep() == SWEEP_BATCH

        await in_rounds(one_round, SWEEP_EVERY_SECONDS, "duplicate sweep")

    async def sweep(self, now: datetime | None = None) -> int:
        """Check the cards whose check a stopped process never made (every phone and e-mail they have);
        returns how many."""
        cards = await self.store.contacts.unchecked((now or utcnow()) - SWEEP_AFTER, SWEEP_BATCH)
        for card in cards:
            assert card.unchecked_since is not None
            if card.merged_into is None:
                logger.info("checking contact %s for duplicates: the process that changed it did not", card.id)
                # (whether a channel vouched for a phone is on the cards themselves: verified_phones)
                await self.check(card, card.phones, card.emails, verified=True)
            await self.store.contacts.checked(card.id, card.unchecked_since)
        return len(cards)
