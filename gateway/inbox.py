"""The hub: every customer message, profile and delivery report a channel hands over comes in here."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError, PyMongoError

from channels.base import DeliveryUpdate, HostUnavailable, InboundMessage, Profile
from gateway.conversations import Conversations
from gateway.csat import Survey
from gateway.dead_letters import DeadLetters
from gateway.events import EventBus, MessageEdited, MessageReceived, MessageWaiting, VisitorActivity
from gateway.leases import Leases
from gateway.logs import log_context
from gateway.media import MediaSources
from gateway.merge import Merger
from gateway.metrics import Metrics
from gateway.model import Author, Contact, Direction, IdentityRef, Media, Message, MessageStatus, Thread, utcnow
from gateway.outbox import Outbox
from gateway.profiles import Profiles
from gateway.signals import Signals
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)


class Inbox:
    """The channels' host: stores inbound messages once, in the right thread, and publishes them."""

    def __init__(
        self,
        store: Storage,
        bus: EventBus,
        outbox: Outbox,
        conversations: Conversations,
        profiles: Profiles,
        merger: Merger,
        media: MediaSources,
        dead_letters: DeadLetters,
        metrics: Metrics,
        leases: Leases,
        signals: Signals,
        survey: Survey | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.outbox = outbox
        self.conversations = conversations
        self.profiles = profiles
        self.merger = merger
        self.media = media
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.leases = leases
        self.signals = signals
        self.survey = survey

    # -- inbound -----------------------------------------------------------------------------

    async def on_inbound(self, inbound: InboundMessage) -> Message | None:
        """Store a customer message once, open or reopen its thread, and publish it."""
        try:
            return await self._ingest(inbound)
        except PyMongoError as err:
            raise HostUnavailable(f"storage: {err}") from err

    async def _ingest(self, inbound: InboundMessage) -> Message | None:
        """A known customer with an open conversation costs three writes: their card (which also says whether a
        merge holds it), their open thread (counted unread), the message (its unique index makes a re-delivery
        a no-op). Anything else - a new customer, a new or reopened thread, a card being merged - takes the
        careful path."""
        started = time.perf_counter()
        ref = inbound.sender
        with log_context(channel=ref.channel):
            if inbound.edit_of is not None:
                edited = await self._apply_edit(inbound)
                if edited is not None:
                    return edited
            if self.survey is not None and (answer := await self.survey.take(inbound)) is not None:
                return answer  # kept in the thread it rates, which stays closed
            now = utcnow()
            contact, created = await self.profiles.sender_of(inbound, now)
            thread = None
            if not created and not contact.merging:
                thread = await self.store.threads.touch_open(contact.id, ref.key, ref.channel, now)
            if thread is None:
                return await self._ingest_carefully(inbound, contact, created, now, started)
            with log_context(thread=thread.number):
                message = await self._store_inbound(inbound, contact, thread, now)
                if message is None:
                    await self.store.threads.untouch(thread.id)  # a re-delivery is not a new unread message
                    return await self._stored_already(inbound)
                return self._received(inbound, contact, thread, message, False, started)

    async def _ingest_carefully(
        self, inbound: InboundMessage, contact: Contact, created: bool, now: datetime, started: float
    ) -> Message | None:
        ref = inbound.sender
        if contact.merging:  # a card merged away still holds its identities for a moment: use the one it went into
            contact = await self.store.contacts.live(contact)
        # A thread opened here counts this message from the start: one command less for a new customer.
        thread, opened = await self.conversations.open_for(contact, ref, now, first=created, unread=1)
        with log_context(thread=thread.number):
            message = await self._store_inbound(inbound, contact, thread, now)
            if message is None:
                if opened:
                    await self.store.threads.untouch(thread.id)
                return await self._stored_already(inbound)
            if not opened:
                thread = await self.store.threads.record_inbound(thread.id, ref.key, ref.channel, now) or thread
            if not created:  # a merge or unmerge may have moved the identity or thread meanwhile
                contact, thread, message, opened = await self.merger.follow(message, thread, opened, contact)
            if opened:
                logger.info("thread #%d opened for contact %s", thread.number, contact.id)
            return self._received(inbound, contact, thread, message, opened, started)

    async def _stored_already(self, inbound: InboundMessage) -> Message | None:
        ref = inbound.sender
        logger.info("re-delivered message %s ignored", inbound.message_id)
        return await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.message_id)

    def _received(
        self, inbound: InboundMessage, contact: Contact, thread: Thread, message: Message, opened: bool, started: float
    ) -> Message:
        channel = inbound.sender.channel
        self.metrics.messages_in.labels(channel).inc()
        self.metrics.ingest_seconds.labels(channel).observe(time.perf_counter() - started)
        self.bus.publish(MessageReceived(thread=thread, message=message, contact=contact, opened=opened))
        return message

    async def _store_inbound(
        self, inbound: InboundMessage, contact: Contact, thread: Thread, now: datetime
    ) -> Message | None:
        ref, content = inbound.sender, inbound.content
        if content.reply_to:
            # The channel names the quoted message by its own id; inside, messages are named by ours.
            quoted = await self.store.messages.by_channel_id(ref.channel, ref.account, content.reply_to)
            content = dataclasses.replace(content, reply_to=str(quoted.id) if quoted else None)
        message = Message(
            id=ObjectId(),
            thread_id=thread.id,
            contact_id=contact.id,
            direction=Direction.IN,
            content=content,
            author=Author.CONTACT,
            channel=ref.channel,
            account=ref.account,
            identity=ref.key,
            channel_message_id=inbound.message_id,
            created_at=now,
            sent_at=inbound.sent_at,
            status=MessageStatus.RECEIVED,
            forwarded_from=inbound.forwarded_from,
            payload=inbound.payload,
            client_id=inbound.client_id,
            stored_by=self.leases.holder,
        )
        try:
            return await self.store.messages.insert(message)
        except DuplicateKeyError:
            return None

    async def _apply_edit(self, inbound: InboundMessage) -> Message | None:
        """Record an edit on the original message; None when we never stored the original."""
        ref = inbound.sender
        original = await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.edit_of or "")
        if original is None:
            return None
        if original.content.text == inbound.content.text:
            return original
        edited = await self.store.messages.record_edit(original.id, inbound.content.text, utcnow())
        thread = await self.store.threads.get(original.thread_id)
        contact = await self.store.contacts.get(original.contact_id)
        if edited and thread and contact:
            self.bus.publish(MessageEdited(thread=thread, message=edited, contact=contact))
        return edited

    # -- what else a channel may ask ------------------------------------------------------------

    async def history(self, sender: IdentityRef, limit: int = 50) -> Sequence[Message]:
        """What the customer may see again: messages exchanged through this very identity, oldest first.

        Never the rest of their card: a visitor who typed someone else's phone must not read that person's
        conversations, even after an operator merged the cards.
        """
        return await self.store.messages.recent_for_identity(sender.key, limit=limit)

    async def on_delivery(self, update: DeliveryUpdate) -> None:
        """Record a delivery report; reports that would move the status backwards are ignored."""
        try:
            await self.outbox.record_delivery(update)
        except PyMongoError as err:
            raise HostUnavailable(f"storage: {err}") from err

    async def on_waiting(self, message_id: str, seconds: float, reason: str) -> None:
        """Publish that an outbound message's send is held up, for its author to see."""
        try:
            message = await self.store.messages.get(ObjectId(message_id)) if ObjectId.is_valid(message_id) else None
            thread = await self.store.threads.get(message.thread_id) if message else None
        except PyMongoError as err:  # only a courtesy to the operator: the send itself goes on
            logger.warning("could not say that message %s waits: %s", message_id, err)
            return
        if message is not None and thread is not None:
            self.bus.publish(MessageWaiting(thread=thread, message=message, seconds=seconds, reason=reason))

    async def on_rating(self, sender: IdentityRef, thread: int | None, score: int, comment: str | None) -> int | None:
        """Store a rating of thread #thread (None: the sender's last one); the number of the thread rated, or None
        when it is not theirs to rate."""
        if self.survey is None:
            return None
        try:
            rated = await self.survey.rate(sender, thread, score, comment)
        except PyMongoError as err:
            raise HostUnavailable(f"storage: {err}") from err
        return rated.number if rated else None

    async def on_unreadable(self, source: str, reason: str, payload: str) -> None:
        """Keep what a channel could not understand as a dead letter."""
        await self.dead_letters.keep(source, reason, payload)

    async def on_profile(self, sender: IdentityRef, profile: Profile, *, create: bool = False) -> bool:
        """Update what we know about a person; create their card only when asked."""
        return await self.profiles.learn_about(sender, profile, create=create)

    async def on_presence(self, sender: IdentityRef, activity: str, at: datetime | None = None) -> None:
        """Typing, left or back: published for the operator of the customer's open conversation (the last two
        also kept on the thread, for /chats, and said once however many processes saw the window close)."""
        try:
            contact = await self.store.contacts.owner(sender.key)
            thread = await self.store.threads.open_for(contact.id) if contact is not None else None
            if contact is None or thread is None:
                return
            if activity == "left":
                if not await self.store.threads.visitor_left(thread.id, at or utcnow()):
                    return
            elif activity == "back":
                if not await self.store.threads.visitor_back(thread.id, utcnow()):
                    return
            elif activity != "typing":
                raise ValueError(f"unknown activity {activity!r}")
        except PyMongoError as err:  # a courtesy to the operator: the customer's own work is not affected
            logger.warning("could not record that a customer is %s: %s", activity, err)
            return
        self.bus.publish(VisitorActivity(contact=contact, kind=activity))

    async def run_alone(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        await self.leases.run(name, work)

    async def tell_peers(self, kind: str, payload: Mapping[str, Any]) -> None:
        try:
            await self.signals.send(kind, payload)
        except PyMongoError as err:  # the note is a courtesy to other processes; this one's work is done
            logger.warning("could not tell the other gateway processes (%s): %s", kind, err)

    def listen_to_peers(self, kind: str, listener: Callable[[Mapping[str, Any]], Awaitable[None]]) -> None:
        self.signals.listen(kind, listener)

    async def fetch_media(self, media: Media) -> bytes:
        """The bytes of a file, from the channel (or operator bot) that holds it."""
        return await self.media.fetch(media)
