"""A person's data on request: everything stored about them in one export, or erased, while they keep writing.

Like a merge (gateway.merge), an erasure is a sequence of guarded single-document writes, each safe to repeat:

1. record the erasure (its audit entry), then reserve the card and every card merged into it, all or none
   (a merge holding one is waited for). From here on no merge takes them, and a message from one of their
   identities starts a fresh card (Profiles.sender_of).
2. take the identities off the cards.
3. close the open conversation and keep every conversation as timings only, so the KPIs still count it;
   delete the messages, the duplicate candidates and what the operator bot remembers of the threads; take
   what moved out of the merge records; delete the cards.
4. let whoever showed the conversations elsewhere (the operator bot) delete what it can there, and list what
   nobody can delete.

A message whose sender was looked up just before step 1 belongs to the erased past, and may be stored after
step 3: the privacy loop sweeps the erased cards and threads again for a while (`sweep_again`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bson import ObjectId

from gateway.events import EventBus, ThreadErased
from gateway.media import MediaLinks
from gateway.merge import LOCK_TTL, WAIT_ROUNDS, WAIT_SECONDS
from gateway.model import Contact, Media, Message, Thread, utcnow
from gateway.storage.duplicates import Duplicate
from gateway.storage.erasures import ErasureRecord, Leftover
from gateway.storage.merges import MergeRecord
from gateway.storage.mongo import Storage
from gateway.storage.relay import RelayEntry
from gateway.storage.threads import ERASED_IDENTITY

logger = logging.getLogger(__name__)

# Documents deleted or changed per command: no one command holds the storage for long.
BATCH = 500
# How long after an erasure the privacy loop sweeps again for what messages in flight stored meanwhile.
SWEEP_WINDOW = timedelta(minutes=10)
EXPORT_PAGE = 1000
# What stays where the gateway cannot reach, by channel the person wrote from.
CUSTOMER_SIDE = {
    "telegram": "Messages already delivered to the customer's Telegram chat with the bot stay there, and Telegram "
    "keeps their files; only the customer can delete them.",
    "whatsapp": "Messages already delivered to the customer's WhatsApp stay on their phone; Twilio keeps its message "
    "log and the files until they are deleted in the Twilio console or through its API.",
    "webwidget": "The visitor's browser keeps its visitor token until its site data is cleared; the token no longer "
    "opens any history.",
}
DATABASE_HISTORY = Leftover(
    "database_history",
    "The storage's change history (the embedded engine: up to storage.history_hours; MongoDB: its oplog), notes "
    "between gateway processes (10 minutes) and any backups hold deleted documents until they roll over.",
)


@dataclass(frozen=True)
class MediaLink:
    """A file of a stored message, and an expiring gateway link to it."""

    message_id: ObjectId
    index: int
    media: Media
    url: str


@dataclass(frozen=True)
class ThreadExport:
    thread: Thread
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class Export:
    """Everything stored about one person."""

    contact: Contact  # the live card
    merged: tuple[Contact, ...]  # the cards merged into it, as they were left
    threads: tuple[ThreadExport, ...]
    merges: tuple[MergeRecord, ...]
    duplicates: tuple[Duplicate, ...]
    media: tuple[MediaLink, ...]
    exported_at: datetime


@dataclass(frozen=True)
class Erased:
    """What an eraser is asked to remove outside the gateway's storage: what the operator bot showed."""

    contact_ids: tuple[ObjectId, ...]
    thread_numbers: tuple[int, ...]
    copies: tuple[RelayEntry, ...]  # messages in operators' and the supervisors' chats
    topics: tuple[tuple[int, int], ...]  # (chat id, topic id) of the forum mirror


Eraser = Callable[[Erased], Awaitable[list[Leftover]]]


class ErasureOutcome(StrEnum):
    ERASED = "erased"
    ALREADY_ERASED = "already_erased"
    UNKNOWN = "unknown"
    BUSY = "busy"  # a merge held a card all the while


@dataclass(frozen=True)
class ErasureResult:
    outcome: ErasureOutcome
    record: ErasureRecord | None = None


@dataclass
class _Swept:
    thread_ids: list[ObjectId]
    counts: dict[str, int] = field(default_factory=dict)
    copies: list[RelayEntry] = field(default_factory=list)
    topics: list[tuple[int, int]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)


class Privacy:
    """Exports and erases a person's data; the operator side adds erasers for what it put into Telegram."""

    def __init__(self, store: Storage, bus: EventBus, links: MediaLinks) -> None:
        self.store = store
        self.bus = bus
        self.links = links
        self._erasers: list[Eraser] = []

    def add_eraser(self, eraser: Eraser) -> None:
        """Let `eraser` delete what it keeps of erased people outside storage; it answers what it could not."""
        self._erasers.append(eraser)

    # -- export ------------------------------------------------------------------------------

    async def export(self, contact_id: ObjectId) -> Export | None:
        """Everything stored about the person behind a card (a merged-away card stands for the card it went into)."""
        card = await self.store.contacts.get(contact_id)
        if card is None:
            return None
        cards = await self._family(await self.store.contacts.live(card))
        ids = [c.id for c in cards]
        threads = sorted(await self.store.threads.of_contacts(ids), key=lambda t: (t.created_at, t.number))
        exported = []
        for thread in threads:
            messages: list[Message] = []
            while page := await self.store.messages.for_thread(thread.id, limit=EXPORT_PAGE, skip=len(messages)):
                messages += page
                if len(page) < EXPORT_PAGE:
                    break
            exported.append(ThreadExport(thread, tuple(messages)))
        media = tuple(
            MediaLink(m.id, i, file, self.links.url(m.id, i))
            for t in exported
            for m in t.messages
            for i, file in enumerate(m.content.media)
        )
        return Export(
            contact=cards[0],
            merged=tuple(cards[1:]),
            threads=tuple(exported),
            merges=tuple(await self.store.merges.concerning(ids)),
            duplicates=tuple(await self.store.duplicates.concerning(ids)),
            media=media,
            exported_at=utcnow(),
        )

    async def _family(self, live: Contact) -> list[Contact]:
        """The live card first, then every card merged into it (and into those)."""
        cards, frontier = [live], [live.id]
        while frontier:
            seen = {c.id for c in cards}
            found = [c for c in await self.store.contacts.merged_into_any(frontier) if c.id not in seen]
            cards += found
            frontier = [c.id for c in found]
        return cards

    # -- erasure -----------------------------------------------------------------------------

    async def erase(
        self, contact_id: ObjectId, *, via: str, by_operator: int | None = None, api_token: str | None = None
    ) -> ErasureResult:
        """Erase the person behind a card; asking again answers the erasure that took it."""
        record = None
        for _ in range(WAIT_ROUNDS):
            card = await self.store.contacts.get(contact_id)
            if card is None:
                if record is not None:
                    await self.store.erasures.discard(record.id)
                done = await self.store.erasures.of_contact(contact_id)
                return ErasureResult(ErasureOutcome.ALREADY_ERASED if done else ErasureOutcome.UNKNOWN, done)
            cards = await self._family(await self.store.contacts.live(card))
            now = utcnow()
            record = record or await self.store.erasures.start(
                contact_id, via, now, by_operator=by_operator, api_token=api_token
            )
            if await self._claim(record.id, cards, now):
                await self.store.erasures.hold(record.id, [c.id for c in cards])
                return ErasureResult(ErasureOutcome.ERASED, await self._erase(record, cards))
            await asyncio.sleep(WAIT_SECONDS)  # a merge (or another erasure) holds a card; it takes milliseconds
        if record is not None:
            await self.store.erasures.discard(record.id)
        return ErasureResult(ErasureOutcome.BUSY)

    async def _claim(self, token: ObjectId, cards: Sequence[Contact], now: datetime) -> bool:
        held: list[ObjectId] = []
        for card in cards:
            if await self.store.contacts.claim_erasure(card.id, token, now, now - LOCK_TTL) is None:
                await self.store.contacts.release_erasure(held, token)
                return False
            held.append(card.id)
        return True

    async def _erase(self, record: ErasureRecord, cards: Sequence[Contact]) -> ErasureRecord:
        """Steps 2-4 for cards the erasure holds; safe to run again on a half-done erasure."""
        ids = [c.id for c in cards]
        channels = sorted({i.channel for c in cards for i in c.identities})
        on_channels = {channel: await self.store.messages.count_on_channel(ids, channel) for channel in channels}
        for card in cards:
            await self.store.contacts.drop_identities(card.id, record.id)
        swept = await self._sweep(ids, record.thread_ids)
        erased = Erased(tuple(ids), tuple(swept.numbers), tuple(swept.copies), tuple(swept.topics))
        leftovers = [Leftover(c, CUSTOMER_SIDE[c], on_channels[c]) for c in channels if c in CUSTOMER_SIDE]
        for eraser in self._erasers:
            try:
                leftovers += await eraser(erased)
            except Exception:  # storage is erased already: what is left outside is reported, not undone
                logger.exception("erasure %s: an eraser failed", record.id)
                leftovers.append(Leftover("operator_chats", "The operator bot could not delete its copies."))
        leftovers.append(DATABASE_HISTORY)
        now = utcnow()
        done = await self.store.erasures.finish(
            record.id, now, now + SWEEP_WINDOW, thread_ids=swept.thread_ids, counts=swept.counts, leftovers=leftovers
        )
        logger.info(
            "contact %s erased (%s, erasure %s): %d cards, %d threads kept as timings, %d messages deleted",
            record.contact_id,
            record.via,
            record.id,
            swept.counts["cards"],
            swept.counts["threads"],
            swept.counts["messages"],
        )
        return done or record

    async def _sweep(self, contact_ids: Sequence[ObjectId], known_threads: Sequence[ObjectId]) -> _Swept:
        """Step 3: everything stored of these cards and threads, gone or (threads) reduced to timings."""
        now, stand_in = utcnow(), ObjectId()
        threads = await self.store.threads.of_contacts(contact_ids)
        swept = _Swept([*dict.fromkeys([*known_threads, *(t.id for t in threads)])])
        for thread in threads:
            closed = await self.store.threads.close(thread.id, now, None) if thread.open else None
            if thread.topic_chat_id is not None and thread.topic_id is not None:
                swept.topics.append((thread.topic_chat_id, thread.topic_id))
            await self.store.threads.anonymize(closed or thread, stand_in, now)
            swept.numbers.append(thread.number)
            if closed is not None:  # routing frees the operator's slot; the operator is told why
                left = replace(
                    closed, contact_id=stand_in, identity=ERASED_IDENTITY, unread=0, topic_chat_id=None,
                    topic_id=None, erased_at=now,
                )  # fmt: skip
                self.bus.publish(ThreadErased(thread=left, by=None))
        ids = list(contact_ids)
        swept.copies = await self.store.relay.of_threads(swept.thread_ids)
        swept.counts = {
            "cards": await self.store.contacts.delete(ids) if ids else 0,
            "threads": len(threads),
            "messages": await self.store.messages.delete_of(contact_ids=ids, thread_ids=swept.thread_ids, batch=BATCH),
            "duplicates": await self.store.duplicates.forget(ids),
            "merges": await self.store.merges.strip(ids, now),
            "copies": await self.store.relay.forget_threads(swept.thread_ids),
        }
        return swept

    async def sweep_again(self) -> int:
        """Finish erasures a stopped process left half done, and sweep recent ones again; returns how many."""
        now = utcnow()
        finished = 0
        for record in await self.store.erasures.unfinished(now - LOCK_TTL):
            if not record.contact_ids:
                await self.store.erasures.discard(record.id)
                continue
            cards = [c for i in record.contact_ids if (c := await self.store.contacts.get(i)) is not None]
            if await self._claim(record.id, cards, now):
                logger.warning("finishing erasure %s left half done by a stopped process", record.id)
                await self._erase(record, cards)
                finished += 1
        for record in await self.store.erasures.recent(now):
            swept = await self._sweep(record.contact_ids, record.thread_ids)
            late = swept.counts["messages"] + swept.counts["threads"] + swept.counts["cards"]
            if late:
                logger.info("erasure %s: swept %d late documents stored while it ran", record.id, late)
                finished += 1
        return finished
