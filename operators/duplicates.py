"""Possible duplicate customers in the operator bot: the offer, who gets it, and news of merges and unmerges."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from bson import ObjectId

from gateway.duplicates import DuplicateCards, DuplicateFinder
from gateway.events import ContactsMerged, ContactsUnmerged, DuplicateFound, EventBus, ThreadAssigned
from gateway.merge import MergeOutcome, MergeResult, older
from gateway.model import Contact, Operator, Thread, from_doc
from gateway.storage.duplicates import Duplicate, DuplicateStatus
from gateway.storage.mongo import Storage
from operators.cards import channel_label, channel_name, pretty_phone
from operators.relay import Relay
from operators.texts import t

logger = logging.getLogger(__name__)

# -- how an offer looks ---------------------------------------------------------------------------


def card_ref(contact: Contact, thread: Thread | None) -> str:
    """`#17` when the card has a conversation, else its name."""
    return f"#{thread.number}" if thread is not None else contact.display_name


def card_line(lang: str, contact: Contact, thread: Thread | None) -> str:
    """`#17 · Ann Lee · WhatsApp +1 415-555-2671`, as on the conversation card."""
    who = f"{contact.display_name} · {channel_of(lang, contact, thread)}"
    return f"#{thread.number} · {who}" if thread is not None else who


def channel_of(lang: str, contact: Contact, thread: Thread | None) -> str:
    """Where the customer writes from: the conversation's channel, else the card's first identity."""
    if thread is not None:
        return channel_label(lang, contact, thread)
    return channel_name(lang, contact.identities[0].channel) if contact.identities else "—"


def reason(lang: str, duplicate: Duplicate) -> str:
    """Why two cards look like one person, in the operator's language (Duplicate.reason, translated)."""
    parts = []
    for match in duplicate.explained():
        if match.kind == "phone":
            part = t(lang, "dup.why.phone", value=pretty_phone(match.value))
        else:
            part = t(lang, "dup.why.email", value=match.value)
        if match.verified:
            part = t(lang, "dup.why.verified", match=part)
        elif match.unverified:
            part = t(lang, "dup.why.unverified", match=part)
        parts.append(part)
    if duplicate.similarity is not None:
        parts.append(t(lang, "dup.why.names", percent=duplicate.similarity))
    return "; ".join(parts)


def alert_text(lang: str, offer: DuplicateCards) -> str:
    """`offer.contact` (the reader's customer) may be `offer.other`: who that is, their last conversation, why."""
    other, thread = offer.other, offer.other_thread
    lines = [
        t(lang, "dup.offer.title", card=card_line(lang, offer.contact, offer.contact_thread)),
        t(lang, "dup.offer.card", name=other.display_name, channel=channel_of(lang, other, thread)),
    ]
    lines += [t(lang, "card.phone", value=pretty_phone(phone)) for phone in other.phones]
    lines += [t(lang, "card.email", value=email) for email in other.emails]
    if thread is None:
        lines.append(t(lang, "dup.offer.no_conversation"))
    else:
        # Open or closed, not who has it: routing may be assigning it right now.
        status = t(lang, "dup.offer.open" if thread.open else "info.thread_closed")
        lines.append(
            t(
                lang,
                "dup.offer.last",
                number=thread.number,
                status=status,
                when=f"{thread.last_message_at:%d.%m.%Y %H:%M} UTC",
            )
        )
    lines.append(t(lang, "dup.offer.why", reason=reason(lang, offer.duplicate)))
    kept = older(offer.contact, offer.other)
    kept_thread = offer.contact_thread if kept is offer.contact else offer.other_thread
    lines.append(t(lang, "dup.offer.keeps", card=card_ref(kept, kept_thread)))
    return "\n".join(lines)


def alert_keyboard(lang: str, offer: DuplicateCards) -> InlineKeyboardMarkup:
    """Merge (the older card stays), Not the same person, and Merge keeping the newer card."""
    duplicate = offer.duplicate.id
    newer, newer_thread = (
        (offer.other, offer.other_thread)
        if older(offer.contact, offer.other) is offer.contact
        else (offer.contact, offer.contact_thread)
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=t(lang, "dup.button.merge"), callback_data=f"dup:m:{duplicate}:0"),
                InlineKeyboardButton(text=t(lang, "dup.button.dismiss"), callback_data=f"dup:n:{duplicate}"),
            ],
            [
                InlineKeyboardButton(
                    text=t(lang, "dup.button.keep", card=card_ref(newer, newer_thread)),
                    callback_data=f"dup:m:{duplicate}:{newer.id}",
                )
            ],
        ]
    )


def merge_text(lang: str, result: MergeResult, first: int | None = None, second: int | None = None) -> str:
    """What a merge or unmerge did, in the operator's language; `first`/`second` are the /merge numbers."""
    merge = result.merge.number if result.merge is not None else None
    match result.outcome:
        case MergeOutcome.MERGED if result.contact and result.other and merge:
            return t(lang, "dup.merged", merge=merge, other=result.other.display_name, kept=result.contact.display_name)
        case MergeOutcome.ALREADY_MERGED if result.contact:
            return t(lang, "dup.already_merged", name=result.contact.display_name)
        case MergeOutcome.SAME_CONTACT:
            return (
                t(lang, "dup.same_threads", first=first, second=second)
                if first and second and first != second
                else t(lang, "dup.same_card")
            )
        case MergeOutcome.NOT_ALLOWED:
            return t(lang, "dup.unmerge.not_allowed" if merge else "dup.not_allowed")
        case MergeOutcome.BUSY:
            return t(lang, "dup.unmerge.busy", merge=merge) if merge else t(lang, "dup.busy")
        case MergeOutcome.UNMERGED if result.contact and result.other:
            return t(
                lang,
                "dup.unmerge.done",
                merge=merge,
                restored=result.other.display_name,
                kept=result.contact.display_name,
            )
        case MergeOutcome.ALREADY_UNDONE:
            return t(lang, "dup.unmerge.already", merge=merge)
        case MergeOutcome.NOT_UNDOABLE if result.contact:
            return t(lang, "dup.unmerge.not_undoable", name=result.contact.display_name)
    return t(lang, "dup.unknown")


def decided_text(lang: str, duplicate: Duplicate) -> str:
    """The answer to a button of a pair someone already decided on."""
    return t(lang, f"dup.decided.{duplicate.status.value}")


def flipped(offer: DuplicateCards) -> DuplicateCards:
    """The same offer, read from the other card's side."""
    return replace(
        offer,
        contact=offer.other,
        other=offer.contact,
        contact_thread=offer.other_thread,
        other_thread=offer.contact_thread,
    )


# -- who is told ----------------------------------------------------------------------------------


class DuplicateAlerts:
    """Offers possible duplicates to the operators of either conversation, and tells them about merges."""

    def __init__(self, store: Storage, relay: Relay, finder: DuplicateFinder) -> None:
        self.store = store
        self.relay = relay
        self.finder = finder

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe after the relay, so an offer follows the card of a newly assigned conversation."""
        bus.subscribe(DuplicateFound, self._on_found)
        bus.subscribe(ThreadAssigned, self._on_assigned)
        bus.subscribe(ContactsMerged, self._on_merged)
        bus.subscribe(ContactsUnmerged, self._on_unmerged)

    async def _on_found(self, event: DuplicateFound) -> None:
        # The event's threads may predate routing, and someone may have decided meanwhile: read again.
        duplicate = await self.store.duplicates.get(event.duplicate.id)
        if duplicate is None or duplicate.status is not DuplicateStatus.OPEN:
            return
        offer = await self.finder.cards(duplicate, event.contact.id)
        if offer is not None:
            await self._offer(offer)

    async def _on_assigned(self, event: ThreadAssigned) -> None:
        # Routing may assign a conversation after its duplicate was found (or later, from the queue or a
        # transfer): its new operator gets the open offers of that customer too.
        if event.operator_id is None:
            return
        if event.contact is not None and not (event.contact.phones or event.contact.emails):
            return  # candidates share a phone or an e-mail: a card with neither has none
        for offer in await self.finder.for_contact(event.thread.contact_id):
            await self._offer(offer, only=event.operator_id)

    async def _offer(self, offer: DuplicateCards, *, only: int | None = None) -> None:
        """The offer to the operator of each card's open conversation (or only to `only`), once each."""
        for side in (offer, flipped(offer)):
            thread = side.contact_thread
            if thread is None or not thread.open or thread.operator_id is None:
                continue
            if only is not None and thread.operator_id != only:
                continue
            operator = await self.store.operators.get(thread.operator_id)
            if operator is None or not await self._first_time(offer.duplicate.id, operator.id):
                continue
            lang = self.relay.lang(operator)
            await self._tell(operator, thread, alert_text(lang, side), alert_keyboard(lang, side))

    async def _first_time(self, duplicate_id: ObjectId, operator_id: int) -> bool:
        # Each operator gets an offer once, whichever event (found, assigned) comes first.
        return await self.store.duplicates.mark_offered(duplicate_id, operator_id)

    async def _on_merged(self, event: ContactsMerged) -> None:
        record = event.merge
        other = from_doc(Contact, record.other_before).display_name if record.other_before else "?"
        kept_thread = await self.store.threads.get(event.kept_thread.id) if event.kept_thread else None
        keeper = await self._operator_of(kept_thread)
        closed = event.closed_thread
        # Routing handled the event first: the joined thread's operator either keeps the conversation or lost it.
        lost = (
            closed.operator_id if closed is not None and (keeper is None or keeper.id != closed.operator_id) else None
        )
        if lost is not None and closed is not None and kept_thread is not None:
            dropped = await self.store.operators.get(lost)
            if dropped is not None:
                lang = self.relay.lang(dropped)
                values = {"closed": closed.number, "kept": kept_thread.number, "merge": record.number}
                text = (
                    t(lang, "dup.joined", name=keeper.name, **values)
                    if keeper is not None
                    else t(lang, "dup.joined_queued", **values)
                )
                await self._tell(dropped, closed, text)
        if keeper is not None and kept_thread is not None and keeper.id != lost:
            lang = self.relay.lang(keeper)
            text = t(
                lang,
                "dup.merged_in",
                number=kept_thread.number,
                other=other,
                kept=event.contact.display_name,
                merge=record.number,
            )
            if closed is not None:
                text += " " + t(lang, "dup.merged_in_joined", closed=closed.number)
            await self._tell(keeper, kept_thread, text)

    async def _on_unmerged(self, event: ContactsUnmerged) -> None:
        # Routing handles the event first, so a reopened conversation already has its operator here.
        threads = [
            await self.store.threads.get(th.id) if th else None for th in (event.contact_thread, event.restored_thread)
        ]
        told = {event.by}  # whoever undid it has the answer to their command
        for thread in threads:
            operator = await self._operator_of(thread)
            if operator is None or thread is None or operator.id in told:
                continue
            told.add(operator.id)
            lang = self.relay.lang(operator)
            await self._tell(
                operator,
                thread,
                t(
                    lang,
                    "dup.unmerged",
                    merge=event.merge.number,
                    restored=_named(event.restored, threads[1]),
                    kept=_named(event.contact, threads[0]),
                ),
            )

    async def _operator_of(self, thread: Thread | None) -> Operator | None:
        if thread is None or not thread.open or thread.operator_id is None:
            return None
        return await self.store.operators.get(thread.operator_id)

    async def _tell(
        self, operator: Operator, thread: Thread, text: str, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        await self.relay.send(
            operator.id, thread, None, SendMessage(chat_id=operator.id, text=text, reply_markup=keyboard)
        )


def _named(contact: Contact, thread: Thread | None) -> str:
    """`Ann Lee (#17)`, or just the name without an open conversation."""
    return f"{contact.display_name} (#{thread.number})" if thread is not None and thread.open else contact.display_name
