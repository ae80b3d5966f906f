"""Merging two contact cards into one, and undoing it, while messages keep arriving.

There are no multi-document transactions, so a merge is a sequence of guarded single-document
writes, each safe to repeat, in an order that lets the hub follow along:

1. reserve both cards in one global order (by id), then mark the other card `merged_into` the kept
   one. From here on the hub resolves the other card's identities to the kept card.
2. join or move the other card's open thread, re-point its closed threads, then its messages.
3. move its identities one by one; a message arriving in the gap between "off one card" and "on the
   other" creates a fresh card for that identity, which is folded in as well (a "stray").
4. add its phones, e-mails, notes and attributes to the kept card, record it all, unlock.

A message that was already past identity resolution when a step ran is moved after it was stored: the
hub asks `Merger.follow` whether its identity and thread still belong to the card it used. Unmerge runs
the same way in reverse. Who gets the joined conversation is routing's call, made on ContactsMerged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from gateway.conversations import Conversations
from gateway.events import ContactsMerged, ContactsUnmerged, EventBus, ThreadClosed
from gateway.model import Contact, Identity, IdentityRef, Message, Notice, Thread, from_doc, to_doc, utcnow
from gateway.storage.duplicates import DuplicateStatus
from gateway.storage.merges import MergeRecord, MergeStatus

if TYPE_CHECKING:
    from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

# A merge takes milliseconds; a lock this old was left by a process that stopped mid-merge.
LOCK_TTL = timedelta(minutes=5)
# How long a merge waits for another merge holding one of its cards (rounds of WAIT_SECONDS).
WAIT_ROUNDS = 40
WAIT_SECONDS = 0.05
# Strays inside strays need a message racing every identity move; this only bounds a pathological loop.
MAX_STRAY_DEPTH = 5
# Fields of a card that unmerge restores from the merge record.
_CARD_FIELDS = (
    "name",
    "phones",
    "emails",
    "other_phones",
    "verified_phones",
    "unverified",
    "attributes",
    "attribute_conflicts",
    "notes",
    "blocked",
    "language",
    "visitor",
)


def older(first: Contact, second: Contact) -> Contact:
    """The card a merge keeps unless told otherwise: the older one."""
    return min((first, second), key=lambda c: (c.created_at, str(c.id)))


class MergeOutcome(StrEnum):
    MERGED = "merged"
    UNMERGED = "unmerged"
    ALREADY_MERGED = "already_merged"
    ALREADY_UNDONE = "already_undone"
    SAME_CONTACT = "same_contact"
    UNKNOWN = "unknown"
    NOT_ALLOWED = "not_allowed"
    BUSY = "busy"
    # The kept card has since been merged into another one: undo that merge first.
    NOT_UNDOABLE = "not_undoable"


@dataclass(frozen=True)
class MergeResult:
    """What a merge or unmerge did."""

    outcome: MergeOutcome
    merge: MergeRecord | None = None
    contact: Contact | None = None  # the kept card, as it is now
    other: Contact | None = None  # the merged card (after unmerge: the restored card)

    @property
    def ok(self) -> bool:
        return self.outcome in (MergeOutcome.MERGED, MergeOutcome.UNMERGED)


async def may_decide(
    store: Storage, operator_id: int, contact_ids: Iterable[ObjectId], threads: Iterable[Thread] = ()
) -> bool:
    """Whether an operator may merge (or keep apart) these cards: a supervisor, or whoever handles
    (or last handled) a conversation of one of them."""
    operator = await store.operators.get(operator_id)
    if operator is None or not operator.active:
        return False
    if operator.is_supervisor or any(t.operator_id == operator_id for t in threads):
        return True
    for contact_id in contact_ids:
        thread = await store.threads.open_for(contact_id) or await store.threads.latest_for(contact_id)
        if thread is not None and thread.operator_id == operator_id:
            return True
    return False


@dataclass
class _Fold:
    """What folding one card into another moved (accumulated over strays)."""

    threads: list[ObjectId]
    identities: list[str]
    messages: int = 0
    kept_thread: Thread | None = None
    closed_thread: Thread | None = None


class Merger:
    """Merges two cards into one and undoes merges; every decisive write is a guarded atomic update."""

    def __init__(self, store: Storage, bus: EventBus, conversations: Conversations) -> None:
        self.store = store
        self.bus = bus
        self.conversations = conversations

    # -- messages that raced a merge ----------------------------------------------------------

    async def follow(
        self, message: Message, thread: Thread, opened: bool, contact: Contact
    ) -> tuple[Contact, Thread, Message, bool]:
        """Where a just-stored message belongs after merges that ran while it was in flight.

        Returns the card, thread and message as they are now, and whether the thread is new; a message
        whose identity or thread moved meanwhile is moved after them.
        """
        owner = await self.store.contacts.owner(message.identity or "") or await self._live(contact)
        if owner.id == contact.id and thread.contact_id == contact.id and thread.joined_into is None:
            return contact, thread, message, opened
        now, ref = utcnow(), IdentityRef.parse(message.identity or "")
        logger.info("message %s raced a merge: moving it from contact %s to %s", message.id, contact.id, owner.id)
        target, target_opened = await self.conversations.open_for(owner, ref, now)
        message = (
            await self.store.messages.update(message.id, {"thread_id": target.id, "contact_id": owner.id}) or message
        )
        if opened and target.id != thread.id and (await self._live(contact)).id != contact.id:
            # We opened this thread for a card merged away meanwhile; nobody else knows to join it.
            joined = await self.store.threads.join(thread.id, contact.id, target.id, owner.id, now)
            if joined is not None:
                await self.store.messages.move_thread(joined.id, target.id, owner.id)
                self.bus.publish(ThreadClosed(thread=joined, by=None))
        if target.id != thread.id:
            thread = await self.store.threads.record_inbound(target.id, ref.key, ref.channel, now) or target
        return owner, thread, message, target_opened

    async def _live(self, contact: Contact) -> Contact:
        return await self.store.contacts.live(await self.store.contacts.get(contact.id) or contact)

    # -- merging -----------------------------------------------------------------------------

    async def merge(self, kept_id: ObjectId, other_id: ObjectId, *, by: int | None, reason: str) -> MergeResult:
        """Merge `other_id` into `kept_id`; `by` is the operator (None: the system), checked when given.

        A card merged away earlier stands for the card it was merged into.
        """
        return await self._run(kept_id, other_id, by, reason, check=by is not None)

    async def merge_pair(
        self, first_id: ObjectId, second_id: ObjectId, *, by: int | None, reason: str, keep: ObjectId | None = None
    ) -> MergeResult:
        """Merge two cards keeping the older one, unless `keep` names the other."""
        kept = await self._kept(first_id, second_id, keep)
        if kept is None:
            return MergeResult(MergeOutcome.UNKNOWN)
        other = second_id if kept == first_id else first_id
        return await self.merge(kept, other, by=by, reason=reason)

    async def merge_duplicate(
        self, duplicate_id: ObjectId, *, by: int | None, keep: ObjectId | None = None
    ) -> MergeResult:
        """The Merge button of a duplicate offer: the older card is kept unless `keep` names the other."""
        duplicate = await self.store.duplicates.get(duplicate_id)
        if duplicate is None:
            return MergeResult(MergeOutcome.UNKNOWN)
        if duplicate.status is DuplicateStatus.DISMISSED:
            return MergeResult(MergeOutcome.NOT_ALLOWED)
        first, second = duplicate.contact_ids
        return await self.merge_pair(first, second, by=by, reason=duplicate.reason or "duplicate", keep=keep)

    async def merge_threads(self, first: int, second: int, *, by: int, keep: int | None = None) -> MergeResult:
        """/merge N M: merge the customers of two conversations, keeping the older card unless `keep`
        names the other thread. Supervisors and the operator of either thread may."""
        threads = [await self.store.threads.by_number(n) for n in (first, second)]
        if threads[0] is None or threads[1] is None:
            return MergeResult(MergeOutcome.UNKNOWN)
        if keep is not None and keep not in (first, second):
            return MergeResult(MergeOutcome.UNKNOWN)
        a, b = threads[0].contact_id, threads[1].contact_id
        if a == b:
            return MergeResult(MergeOutcome.SAME_CONTACT)
        if not await may_decide(self.store, by, (a, b), [t for t in threads if t is not None]):
            return MergeResult(MergeOutcome.NOT_ALLOWED)
        kept = await self._kept(a, b, None if keep is None else (a if keep == first else b))
        if kept is None:
            return MergeResult(MergeOutcome.UNKNOWN)
        return await self._run(kept, b if kept == a else a, by, f"/merge {first} {second}", check=False)

    async def _kept(self, first_id: ObjectId, second_id: ObjectId, keep: ObjectId | None) -> ObjectId | None:
        """The card to keep: `keep` when it is one of the two, else the older card."""
        if keep is not None:
            return keep if keep in (first_id, second_id) else None
        first, second = [await self.store.contacts.get(i) for i in (first_id, second_id)]
        if first is None or second is None:
            return None
        return older(first, second).id

    async def _run(
        self, kept_id: ObjectId, other_id: ObjectId, by: int | None, reason: str, *, check: bool
    ) -> MergeResult:
        if kept_id == other_id:
            return MergeResult(MergeOutcome.SAME_CONTACT)
        for _ in range(WAIT_ROUNDS):
            kept, other = await self.store.contacts.get(kept_id), await self.store.contacts.get(other_id)
            if kept is None or other is None:
                return MergeResult(MergeOutcome.UNKNOWN)
            kept, other = await self.store.contacts.live(kept), await self.store.contacts.live(other)
            if kept.id == other.id:
                return MergeResult(MergeOutcome.ALREADY_MERGED, contact=kept)
            if check and by is not None and not await may_decide(self.store, by, (kept.id, other.id)):
                return MergeResult(MergeOutcome.NOT_ALLOWED)
            result = await self._try_merge(kept, other, by, reason)
            if result is not None:
                return result
            await asyncio.sleep(WAIT_SECONDS)  # another merge holds one of the cards; it takes milliseconds
        return MergeResult(MergeOutcome.BUSY)

    async def _try_merge(self, kept: Contact, other: Contact, by: int | None, reason: str) -> MergeResult | None:
        """One attempt; None when another merge holds one of the cards."""
        now = utcnow()
        record = await self.store.merges.start(kept.id, other.id, by, reason, now)
        # Both cards are reserved in one global order (by id), so two merges of the same pair,
        # in either direction, cannot each hold one card and wait for the other forever.
        first_other = str(other.id) < str(kept.id)
        if first_other and await self.store.contacts.lock(other.id, record.id, now, now - LOCK_TTL) is None:
            await self.store.merges.discard(record.id)
            return None
        locked = await self.store.contacts.lock(kept.id, record.id, now, now - LOCK_TTL)
        marked = None
        if locked is not None:
            marked = await self.store.contacts.mark_merged(other.id, kept.id, record.id, now, now - LOCK_TTL)
        if locked is None or marked is None:
            await self.store.contacts.unlock(kept.id, record.id)
            await self.store.contacts.unlock(other.id, record.id)
            await self.store.merges.discard(record.id)
            return None
        record = await self.store.merges.update(record.id, {"other_before": to_doc(marked)}) or record
        return await self._complete(record, locked, marked)

    async def _complete(self, record: MergeRecord, kept: Contact, other: Contact) -> MergeResult:
        """Steps 2-4 of a merge whose other card is marked; safe to run again on a half-done merge."""
        fold = await self._fold(record, kept, other, depth=0)
        now = utcnow()
        await self.store.duplicates.settle_pair(kept.id, other.id, DuplicateStatus.MERGED, record.by, now, record.id)
        fields: dict[str, Any] = {
            "identities": list(dict.fromkeys([*record.identities, *fold.identities])),
            "threads": list(dict.fromkeys([*record.threads, *fold.threads])),
            "messages_moved": record.messages_moved + fold.messages,
            "finished_at": now,
        }
        if fold.kept_thread is not None:
            fields["kept_thread_id"] = fold.kept_thread.id
        if fold.closed_thread is not None:
            fields |= {"closed_thread_id": fold.closed_thread.id, "closed_operator_id": fold.closed_thread.operator_id}
        done = await self.store.merges.transition(record.id, MergeStatus.RUNNING, MergeStatus.DONE, fields)
        await self.store.contacts.unlock(kept.id, record.id)
        record = done or await self.store.merges.get(record.id) or record
        contact = await self.store.contacts.get(kept.id) or kept
        logger.info(
            "merge #%d: contact %s merged into %s (%s, by %s): %d identities, %d threads, %d messages",
            record.number,
            other.id,
            kept.id,
            record.reason,
            record.by,
            len(record.identities),
            len(record.threads),
            record.messages_moved,
        )
        kept_thread = await self.store.threads.get(fold.kept_thread.id) if fold.kept_thread else None
        self.bus.publish(
            ContactsMerged(
                merge=record,
                contact=contact,
                kept_thread=kept_thread,
                closed_thread=fold.closed_thread,
            )
        )
        return MergeResult(MergeOutcome.MERGED, record, contact, other)

    async def _fold(self, record: MergeRecord, kept: Contact, other: Contact, *, depth: int) -> _Fold:
        """Move everything of `other` (already marked merged into `kept`) onto `kept`."""
        now = utcnow()
        fold = _Fold(threads=await self.store.threads.ids_of(other.id), identities=[])
        # Threads first, then messages: a message stored in the other card's thread after this step
        # sees the thread moved when the hub records it, and relocates itself.
        fold.kept_thread, fold.closed_thread, joined = await self._join_threads(record, kept.id, other.id)
        fold.messages += joined
        await self.store.threads.give_closed(fold.threads, other.id, kept.id)
        fold.messages += await self.store.messages.give_all(other.id, kept.id)
        for identity in other.identities:
            fold.identities.append(identity.key)
            await self._move_identity(record, kept.id, other.id, identity, fold, depth)
        # A message that found the other card unlocked just before the mark is stored without asking
        # Merger.follow, possibly after the moves above: sweep once more now that its identities are gone.
        if fold.closed_thread is not None and fold.kept_thread is not None:
            fold.messages += await self.store.messages.move_thread(
                fold.closed_thread.id, fold.kept_thread.id, kept.id, of=other.id
            )
        fold.messages += await self.store.messages.give_all(other.id, kept.id)
        # Read the card again: the hub may have taught it a phone just before it was marked.
        current = await self.store.contacts.get(other.id) or other
        added = await self._absorb(kept.id, current, now)
        if added:
            previous = (await self.store.merges.get(record.id) or record).added
            await self.store.merges.update(record.id, {"added": _combine(previous, added)})
        await self.store.duplicates.move(other.id, kept.id, now)
        return fold

    async def _join_threads(
        self, record: MergeRecord, kept_id: ObjectId, other_id: ObjectId
    ) -> tuple[Thread | None, Thread | None, int]:
        """Give the other card's open thread to the kept card, or join it into the kept card's open one.

        Returns the kept card's open thread, the thread closed by joining, and how many messages moved.
        """
        for _ in range(10):
            theirs = await self.store.threads.open_for(other_id)
            ours = await self.store.threads.open_for(kept_id)
            if theirs is None:
                return ours, None, 0
            if ours is None:
                moved = await self.store.threads.give_open(theirs.id, other_id, kept_id)
                if moved is not None:
                    return moved, None, 0
                continue  # the kept card opened a thread meanwhile: join into it
            closed = await self.store.threads.join(theirs.id, other_id, ours.id, kept_id, utcnow())
            if closed is None:
                continue
            count = await self.store.messages.move_thread(closed.id, ours.id, kept_id)
            await self.store.threads.add_unread(ours.id, closed.unread, closed.last_message_at)
            values = {"kept": ours.number, "closed": closed.number, "merge": record.number}
            await self.conversations.note(ours, notice=Notice("merge.joined_here", values))
            await self.conversations.note(closed, notice=Notice("merge.joined_into", values))
            # Routing frees the closed thread's slot; the merge's own event says who keeps the conversation.
            self.bus.publish(ThreadClosed(thread=closed, by=None))
            return ours, closed, count
        return await self.store.threads.open_for(kept_id), None, 0

    async def _move_identity(
        self, record: MergeRecord, kept_id: ObjectId, other_id: ObjectId, identity: Identity, fold: _Fold, depth: int
    ) -> None:
        """Take one identity off the other card and put it on the kept card."""
        now = utcnow()
        # None when a repeated step already took it off (or a stopped process did, then lost it).
        identity = await self.store.contacts.pull_identity(other_id, identity.key) or identity
        for _ in range(10):
            try:
                await self.store.contacts.push_identity(kept_id, identity, now)  # a no-op if the kept card has it
                return
            except DuplicateKeyError:
                pass
            # A message for this identity arrived while it was on neither card and got a fresh card.
            stray = await self.store.contacts.by_identity(identity.key)
            if stray is None or stray.id == kept_id:
                continue
            if depth >= MAX_STRAY_DEPTH:
                logger.error("merge #%d: identity %s kept on stray card %s", record.number, identity.key, stray.id)
                return
            await self._fold_stray(record, kept_id, stray, fold, depth)
        logger.error("merge #%d: could not move identity %s", record.number, identity.key)

    async def _fold_stray(
        self, record: MergeRecord, kept_id: ObjectId, stray: Contact, fold: _Fold, depth: int
    ) -> None:
        now = utcnow()
        marked = await self.store.contacts.mark_merged(stray.id, kept_id, record.id, now, now - LOCK_TTL)
        if marked is None:
            return  # another merge holds it; the push is retried
        logger.info(
            "merge #%d: folding in card %s, created for a message that arrived mid-merge", record.number, stray.id
        )
        await self.store.merges.update(record.id, {}, **{"$addToSet": {"strays": stray.id}})
        kept = await self.store.contacts.get(kept_id)
        inner = await self._fold(record, kept or marked, marked, depth=depth + 1)
        fold.threads += inner.threads
        fold.messages += inner.messages

    async def _absorb(self, kept_id: ObjectId, other: Contact, now: datetime) -> dict[str, Any]:
        """Add the other card's phones, e-mails, notes and attributes to the kept card (one update).

        Returns what was added, for unmerge; conflicting attribute values are kept side by side.
        """
        kept = await self.store.contacts.get(kept_id)
        if kept is None:
            return {}
        lists = {
            name: [v for v in getattr(other, name) if v not in getattr(kept, name)]
            for name in ("phones", "emails", "other_phones", "verified_phones", "unverified")
        }
        lists["notes"] = [to_doc(n) for n in other.notes if n not in kept.notes]
        set_fields: dict[str, Any] = {}
        added_attributes, conflicts_before = [], {}
        for key in dict.fromkeys([*other.attributes, *other.attribute_conflicts]):
            ours = list(kept.attribute_conflicts.get(key) or ([kept.attributes[key]] if key in kept.attributes else []))
            theirs = other.attribute_conflicts.get(key) or ([other.attributes[key]] if key in other.attributes else [])
            if key not in kept.attributes and key in other.attributes:
                set_fields[f"attributes.{key}"] = other.attributes[key]
                added_attributes.append(key)
            values = ours + [v for v in theirs if v not in ours]
            if len(values) > 1 and values != list(kept.attribute_conflicts.get(key) or []):
                set_fields[f"attribute_conflicts.{key}"] = values
                conflicts_before[key] = kept.attribute_conflicts.get(key)
        taken = [name for name in ("name", "language", "visitor") if not getattr(kept, name) and getattr(other, name)]
        set_fields |= {name: getattr(other, name) for name in taken}
        if other.blocked and not kept.blocked:  # a blocked person stays blocked whichever card they write from
            set_fields["blocked"] = True
            taken.append("blocked")
        if not (set_fields or any(lists.values())):
            return {}
        await self.store.contacts.absorb(kept_id, now, set_fields=set_fields, add=lists)
        return {
            **{k: v for k, v in lists.items() if v},
            "attributes": added_attributes,
            "conflicts": conflicts_before,
            "taken": taken,
        }

    # -- unmerging ---------------------------------------------------------------------------

    async def unmerge(self, merge: ObjectId | int, *, by: int | None) -> MergeResult:
        """Undo a merge (by id or number): both cards as they were, plus what arrived since on each
        identity. Only supervisors (or the system, by=None) may."""
        record = await (self.store.merges.by_number(merge) if isinstance(merge, int) else self.store.merges.get(merge))
        if record is None:
            return MergeResult(MergeOutcome.UNKNOWN)
        if by is not None:
            operator = await self.store.operators.get(by)
            if operator is None or not operator.is_supervisor:
                return MergeResult(MergeOutcome.NOT_ALLOWED, record)
        if record.erased_at is not None:  # what it moved is gone with the person: nothing to restore
            return MergeResult(MergeOutcome.UNKNOWN, record)
        if record.status is MergeStatus.UNDONE:
            return MergeResult(MergeOutcome.ALREADY_UNDONE, record)
        if record.status is not MergeStatus.DONE:
            return MergeResult(MergeOutcome.BUSY, record)
        kept = await self.store.contacts.get(record.kept_id)
        if kept is None:
            return MergeResult(MergeOutcome.UNKNOWN, record)
        if kept.merged_into is not None:
            return MergeResult(MergeOutcome.NOT_UNDOABLE, record, kept)
        now = utcnow()
        claimed = await self.store.merges.transition(
            record.id, MergeStatus.DONE, MergeStatus.UNDOING, {"undone_by": by, "undone_at": now}
        )
        if claimed is None:
            return await self.unmerge(record.id, by=by)  # someone else moved it; answer from its new state
        if await self.store.contacts.lock(kept.id, record.id, now, now - LOCK_TTL) is None:
            await self.store.merges.transition(
                record.id, MergeStatus.UNDOING, MergeStatus.DONE, {"undone_by": None, "undone_at": None}
            )
            return MergeResult(MergeOutcome.BUSY, record)
        return await self._split(claimed)

    async def _split(self, record: MergeRecord) -> MergeResult:
        """Undo a merge whose record is UNDOING and whose kept card is locked; safe to run again."""
        now = utcnow()
        kept_id, other_id = record.kept_id, record.other_id
        before = record.other_before
        fields = {name: before.get(name) for name in _CARD_FIELDS} | {"updated_at": now}
        await self.store.contacts.unmark_merged(other_id, record.id, fields)
        # Threads come back before identities, so a message the hub stores meanwhile sees the move.
        await self._return_threads(record, now)
        identities = [from_doc(Identity, d) for d in before.get("identities", [])]
        keys = [i.key for i in identities]
        stray_fold = _Fold(threads=[], identities=[])
        for identity in identities:
            # The kept card's copy has what arrived since (last message time, reachability).
            current = await self.store.contacts.pull_identity(kept_id, identity.key) or identity
            await self._move_identity_back(record, other_id, current, stray_fold)
        kept_keys = [i.key for i in (await self.store.contacts.get(kept_id) or Contact(kept_id, now, now)).identities]
        await self._sort_messages(kept_id, other_id, keys, now)
        await self._sort_messages(other_id, kept_id, kept_keys, now)
        await self._take_back(kept_id, record.added, now)
        await self.store.duplicates.settle_pair(
            kept_id, other_id, DuplicateStatus.DISMISSED, record.undone_by, now, record.id
        )
        done = await self.store.merges.transition(record.id, MergeStatus.UNDOING, MergeStatus.UNDONE)
        await self.store.contacts.unlock(kept_id, record.id)
        record = done or record
        kept = await self.store.contacts.get(kept_id)
        restored = await self.store.contacts.get(other_id)
        assert kept is not None and restored is not None
        kept_thread = await self.store.threads.open_for(kept_id)
        restored_thread = await self.store.threads.open_for(other_id)
        logger.info(
            "merge #%d undone by %s: contact %s split from %s", record.number, record.undone_by, other_id, kept_id
        )
        self.bus.publish(
            ContactsUnmerged(
                merge=record,
                contact=kept,
                restored=restored,
                contact_thread=kept_thread,
                restored_thread=restored_thread,
                by=record.undone_by,
            )
        )
        return MergeResult(MergeOutcome.UNMERGED, record, kept, restored)

    async def _return_threads(self, record: MergeRecord, now: datetime) -> None:
        """The merged card's threads go back to it; the joined one reopens if its conversation goes on."""
        kept_id, other_id = record.kept_id, record.other_id
        if record.kept_thread_id in record.threads:  # its open thread became the kept card's: take it back
            await self.store.threads.give_open(record.kept_thread_id, kept_id, other_id)
        await self.store.threads.give_closed(record.threads, kept_id, other_id)
        if record.closed_thread_id is not None and record.kept_thread_id is not None:
            into = await self.store.threads.get(record.kept_thread_id)
            if into is not None and into.open and into.contact_id == kept_id:
                await self.store.threads.reopen_joined(record.closed_thread_id, other_id, now)
            await self.store.messages.return_joined(record.closed_thread_id, record.kept_thread_id, other_id)
        await self.store.messages.align_notes(record.threads, other_id)

    async def _move_identity_back(
        self, record: MergeRecord, other_id: ObjectId, identity: Identity, fold: _Fold
    ) -> None:
        now = utcnow()
        for _ in range(10):
            try:
                await self.store.contacts.push_identity(other_id, identity, now)
                return
            except DuplicateKeyError:
                pass
            stray = await self.store.contacts.by_identity(identity.key)
            if stray is None or stray.id == other_id:
                continue
            await self._fold_stray(record, other_id, stray, fold, depth=0)
        logger.error("unmerge #%d: could not move identity %s back", record.number, identity.key)

    async def _sort_messages(self, from_id: ObjectId, to_id: ObjectId, keys: Sequence[str], now: datetime) -> None:
        """Messages of `from_id` written from or to `to_id`'s identities go to `to_id`: into its own
        thread when they are in one, else into its open thread (opened when their thread is open)."""
        if not keys:
            return
        own = set(await self.store.threads.ids_of(to_id))
        found = await self.store.messages.of_identities(from_id, keys)
        found += await self.store.messages.in_threads_of_identities(list(own), keys, to_id)
        stay = [m for m, t in found if t in own]
        if stay:
            await self.store.messages.give(stay, to_id)
        strays: dict[ObjectId, list[ObjectId]] = {}
        for message_id, thread_id in found:
            if thread_id not in own:
                strays.setdefault(thread_id, []).append(message_id)
        for thread_id, message_ids in strays.items():
            source = await self.store.threads.get(thread_id)
            target = await self.store.threads.open_for(to_id)
            if target is None:
                latest = await self.store.threads.latest_for(to_id)
                if (source is not None and source.open) or latest is None:
                    last = await self.store.messages.get(message_ids[-1])
                    key = last.identity if last is not None and last.identity else keys[0]
                    target, _ = await self.store.threads.open(to_id, key, IdentityRef.parse(key).channel, now, latest)
                else:
                    target = latest
            await self.store.messages.move(message_ids, target.id, to_id)

    async def _take_back(self, kept_id: ObjectId, added: Mapping[str, Any], now: datetime) -> None:
        """Remove from the kept card exactly what the merge added to it."""
        pull = {
            name: list(added.get(name, []))
            for name in ("phones", "emails", "other_phones", "verified_phones", "unverified", "notes")
        }
        unset = [f"attributes.{key}" for key in added.get("attributes", [])]
        unset += [name for name in added.get("taken", []) if name != "blocked"]
        set_fields: dict[str, Any] = {"blocked": False} if "blocked" in added.get("taken", []) else {}
        for key, previous in (added.get("conflicts") or {}).items():
            if previous is None:
                unset.append(f"attribute_conflicts.{key}")
            else:
                set_fields[f"attribute_conflicts.{key}"] = previous
        await self.store.contacts.absorb(kept_id, now, set_fields=set_fields, pull=pull, unset=unset)

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self) -> int:
        """Finish merges and unmerges a stopped process left half done; returns how many."""
        finished = 0
        now = utcnow()
        for record in await self.store.merges.unfinished(now - LOCK_TTL):
            kept = await self.store.contacts.get(record.kept_id)
            if record.status is MergeStatus.UNDOING:
                await self._split(record)
            elif not record.other_before or kept is None:
                if kept is not None:
                    await self.store.contacts.unlock(kept.id, record.id)
                await self.store.merges.discard(record.id)  # it never marked the other card
            else:
                # The card as marked, identities included: some may be on neither card now.
                await self._complete(record, kept, from_doc(Contact, record.other_before))
            finished += 1
            logger.warning("finished merge #%d left half done by a stopped process", record.number)
        return finished


def _combine(previous: Mapping[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """Two `added` records as one (a stray folded into the same merge adds to the first)."""
    combined: dict[str, Any] = {
        k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for k, v in previous.items()
    }
    for key, value in added.items():
        if isinstance(value, list):
            combined[key] = [*combined.get(key, []), *[v for v in value if v not in combined.get(key, [])]]
        elif isinstance(value, dict):
            combined[key] = {**value, **combined.get(key, {})}  # the earliest "before" wins
        else:
            combined[key] = value
    return combined
