"""The hub: stores inbound messages, records outbound ones, keeps delivery status."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from channels.base import Channel, DeliveryUpdate, InboundMessage, Profile
from gateway.config import Settings
from gateway.contacts import normalize_email, normalize_phone
from gateway.events import ContactChanged, EventBus, MessageEdited, MessageReceived, MessageStored, ThreadClosed
from gateway.logs import log_context
from gateway.metrics import Metrics
from gateway.model import (
    Author,
    Contact,
    Content,
    Direction,
    Identity,
    IdentityRef,
    Kind,
    Media,
    Message,
    MessageStatus,
    Thread,
    utcnow,
)
from gateway.outbox import Outbox
from gateway.storage.mongo import Store

logger = logging.getLogger(__name__)

MediaFetcher = Callable[[Media], Awaitable[bytes]]


@dataclasses.dataclass(frozen=True)
class Draft:
    """What an operator, the API or the system wants to send into a thread."""

    content: Content
    id: ObjectId | None = None
    author: Author = Author.OPERATOR
    author_id: int | None = None
    author_name: str | None = None


class Inbox:
    """Every customer message, reply and delivery report passes through here."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        metrics: Metrics,
        settings: Settings,
    ) -> None:
        self.store = store
        self.bus = bus
        self.outbox = outbox
        self.channels = channels
        self.metrics = metrics
        self.settings = settings
        self.media_sources: dict[str, MediaFetcher] = {}

    # -- inbound -----------------------------------------------------------------------------

    async def on_inbound(self, inbound: InboundMessage) -> Message | None:
        """Store a customer message once, open or reopen its thread, and publish it."""
        started = time.perf_counter()
        ref = inbound.sender
        with log_context(channel=ref.channel):
            existing = await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.message_id)
            if existing is not None:
                logger.info("re-delivered message %s ignored", inbound.message_id)
                return existing
            if inbound.edit_of is not None:
                edited = await self._apply_edit(inbound)
                if edited is not None:
                    return edited
            now = utcnow()
            contact = await self._contact_for(inbound, now)
            thread, opened = await self._thread_for(contact, ref, now)
            with log_context(thread=thread.number):
                message = await self._store_inbound(inbound, contact, thread, now)
                if message is None:  # a concurrent duplicate won the insert
                    return await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.message_id)
                thread = await self.store.threads.record_inbound(thread.id, ref.key, ref.channel, now)
                # A merge or unmerge may have moved this identity or thread while the message was in flight.
                owner = await self.store.contacts.owner(ref.key) or await self._live(contact)
                if owner.id != contact.id or thread.contact_id != contact.id or thread.joined_into is not None:
                    contact, thread, message, opened = await self._relocate(message, thread, opened, contact, owner)
                if opened:
                    logger.info("thread #%d opened for contact %s", thread.number, contact.id)
                self.metrics.messages_in.labels(ref.channel).inc()
                self.metrics.ingest_seconds.labels(ref.channel).observe(time.perf_counter() - started)
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

    async def _contact_for(self, inbound: InboundMessage, now: datetime) -> Contact:
        ref, profile = inbound.sender, inbound.profile
        identity_fields: dict[str, Any] = {"last_inbound_at": now, "reachable": True, "unreachable_reason": None}
        if profile.display_name:
            identity_fields["display_name"] = profile.display_name
        if profile.username:
            identity_fields["username"] = profile.username
        contact = await self.store.contacts.update_identity(ref.key, now, **identity_fields)
        if contact is None:
            identity = Identity(
                key=ref.key, channel=ref.channel, account=ref.account, external_id=ref.external_id, **identity_fields
            )
            contact = await self.store.contacts.create(identity, now, language=profile.language)
        # A card merged away still holds its identities for a moment: use the card it went into.
        return await self._learn(await self.store.contacts.live(contact), profile, now)

    async def _live(self, contact: Contact) -> Contact:
        return await self.store.contacts.live(await self.store.contacts.get(contact.id) or contact)

    async def _relocate(
        self, message: Message, thread: Thread, opened: bool, contact: Contact, owner: Contact
    ) -> tuple[Contact, Thread, Message, bool]:
        """Move a message that raced a merge or unmerge to the card and thread that now answer for it."""
        now, ref = utcnow(), IdentityRef.parse(message.identity or "")
        logger.info("message %s raced a merge: moving it from contact %s to %s", message.id, contact.id, owner.id)
        target, target_opened = await self._thread_for(owner, ref, now)
        message = (
            await self.store.messages.update(message.id, {"thread_id": target.id, "contact_id": owner.id}) or message
        )
        if opened and target.id != thread.id and (await self._live(contact)).id != contact.id:
            # We opened this thread for a card merged away meanwhile; nobody else knows to join it.
            joined = await self.store.merges.join_thread(thread.id, contact.id, target.id, owner.id, now)
            if joined is not None:
                await self.store.merges.move_thread_messages(joined.id, target.id, owner.id)
                self.bus.publish(ThreadClosed(thread=joined, by=None))
        if target.id != thread.id:
            thread = await self.store.threads.record_inbound(target.id, ref.key, ref.channel, now)
        return owner, thread, message, target_opened

    async def _thread_for(self, contact: Contact, ref: IdentityRef, now: datetime) -> tuple[Thread, bool]:
        thread = await self.store.threads.open_for(contact.id)
        if thread is not None:
            return thread, False
        previous = await self.store.threads.latest_for(contact.id)
        if contact.blocked and previous is not None:
            # A blocked customer's messages are kept on their last thread, which stays closed.
            return previous, False
        return await self.store.threads.open(contact.id, ref.key, ref.channel, now, previous)

    # -- what we know about people -----------------------------------------------------------

    async def on_profile(self, sender: IdentityRef, profile: Profile, *, create: bool = False) -> bool:
        """Update the contact behind an identity; create it only when asked."""
        contact = await self.store.contacts.owner(sender.key)
        if contact is None:
            if not create:
                return False
            contact = await self.contact_for(sender, profile)
        await self._learn(contact, profile, utcnow())
        return True

    async def contact_for(self, sender: IdentityRef, profile: Profile | None = None) -> Contact:
        """The contact behind an identity, created on first sight."""
        contact = await self.store.contacts.owner(sender.key)
        if contact is not None:
            return contact
        profile = profile or Profile()
        identity = Identity(
            key=sender.key,
            channel=sender.channel,
            account=sender.account,
            external_id=sender.external_id,
            display_name=profile.display_name,
            username=profile.username,
        )
        return await self.store.contacts.create(identity, utcnow(), language=profile.language)

    async def update_contact(
        self,
        contact: Contact,
        *,
        name: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Contact:
        """Set customer info from the API or an operator."""
        fields = {f"attributes.{k}": v for k, v in (attributes or {}).items()}
        return await self._learn(contact, Profile(name=name, phone=phone, email=email), utcnow(), fields)

    async def _learn(
        self, contact: Contact, profile: Profile, now: datetime, extra: Mapping[str, Any] | None = None
    ) -> Contact:
        """Add what a profile tells us to the card; publish ContactChanged when phones or e-mails were added."""
        set_fields: dict[str, Any] = dict(extra or {})
        if profile.name:
            set_fields["name"] = profile.name.strip()
        if profile.language and not contact.language:
            set_fields["language"] = profile.language
        phones, other_phones, emails, verified = [], [], [], []
        if profile.phone:
            phone = normalize_phone(profile.phone, self.settings.contacts.default_region)
            if phone is None:
                other_phones.append(profile.phone.strip())
            elif phone not in contact.phones:
                phones.append(phone)
            if phone and profile.phone_verified and phone not in contact.verified_phones:
                verified.append(phone)
        if profile.email:
            email = normalize_email(profile.email)
            if email and email not in contact.emails:
                emails.append(email)
        push: dict[str, Any] = {}
        if profile.visitor:
            known = contact.visitor or {}
            # Only what changed: every widget message carries the visitor's details again.
            changed = {k: v for k, v in profile.visitor.items() if v is not None and known.get(k) != v}
            page = changed.get("url")
            if changed:
                set_fields |= {f"visitor.{k}": v for k, v in changed.items()}
                set_fields["visitor.updated_at"] = now
            if page:
                push["visitor.pages"] = {
                    "$each": [{"url": page, "title": profile.visitor.get("title"), "at": now}],
                    "$slice": -50,
                }
        if not (set_fields or phones or other_phones or emails or push or verified):
            return contact
        updated = await self.store.contacts.update(
            contact.id,
            now,
            set_fields=set_fields,
            add_phones=phones,
            add_emails=emails,
            add_other_phones=other_phones,
            push=push,
        )
        if updated is None:
            return contact
        if updated.merged_into is not None and (live := await self.store.contacts.live(updated)).id != updated.id:
            return await self._learn(live, profile, now, extra)  # merged away meanwhile: teach the kept card
        if verified:
            updated = await self.store.contacts.add_verified_phone(updated.id, verified[0], now) or updated
        if phones or emails or verified:
            self.bus.publish(
                ContactChanged(
                    contact=updated,
                    new_phones=tuple(dict.fromkeys(phones + verified)),
                    new_emails=tuple(emails),
                    phone_verified=profile.phone_verified,
                )
            )
        return updated

    async def history(self, sender: IdentityRef, limit: int = 50) -> Sequence[Message]:
        """What the customer may see again: messages in and out of their contact, oldest first."""
        contact = await self.store.contacts.owner(sender.key)
        if contact is None:
            return []
        return await self.store.messages.recent_for_contact(contact.id, limit=limit)

    # -- outbound ----------------------------------------------------------------------------

    async def send(self, thread: Thread, draft: Draft) -> Message:
        """Store an outbound message, then hand it to the thread's channel; returns it with its status."""
        now = utcnow()
        with log_context(thread=thread.number, channel=thread.channel):
            message = Message(
                id=draft.id or ObjectId(),
                thread_id=thread.id,
                contact_id=thread.contact_id,
                direction=Direction.OUT,
                content=draft.content,
                author=draft.author,
                author_id=draft.author_id,
                author_name=draft.author_name,
                channel=thread.channel,
                account=thread.identity_ref.account,
                identity=thread.identity,
                created_at=now,
                status=MessageStatus.QUEUED,
                next_attempt_at=self.outbox.lease_until(now),
            )
            await self.store.messages.insert(message)
            await self.store.threads.record_outbound(thread.id, now, by_operator=draft.author is Author.OPERATOR)
            self.bus.publish(MessageStored(thread=thread, message=message))
            return await self.outbox.submit(message)

    async def note(
        self,
        thread: Thread,
        text: str,
        *,
        author: Author = Author.SYSTEM,
        author_id: int | None = None,
        author_name: str | None = None,
    ) -> Message:
        """Store an internal message in a thread: seen by operators, never sent to the customer."""
        message = Message(
            id=ObjectId(),
            thread_id=thread.id,
            contact_id=thread.contact_id,
            direction=Direction.INTERNAL,
            content=Content(Kind.EVENT, text),
            author=author,
            author_id=author_id,
            author_name=author_name,
            channel=thread.channel,
            created_at=utcnow(),
            status=MessageStatus.RECEIVED,
        )
        await self.store.messages.insert(message)
        self.bus.publish(MessageStored(thread=thread, message=message))
        return message

    async def close(self, thread: Thread, *, by: int | None = None) -> Thread | None:
        """Close a thread; the customer's next message opens a new one linked to it."""
        closed = await self.store.threads.close(thread.id, utcnow(), by)
        if closed is not None:
            with log_context(thread=closed.number, channel=closed.channel):
                logger.info("thread #%d closed", closed.number)
            self.bus.publish(ThreadClosed(thread=closed, by=by))
        return closed

    async def on_delivery(self, update: DeliveryUpdate) -> None:
        """Record a delivery report; reports that would move the status backwards are ignored."""
        await self.outbox.record_delivery(update)

    # -- media -------------------------------------------------------------------------------

    async def fetch_media(self, media: Media) -> bytes:
        """The bytes of a file, from the channel (or operator bot) that holds it."""
        channel = self.channels.get(media.source)
        if channel is not None:
            return await channel.fetch_media(media)
        fetch = self.media_sources.get(media.source)
        if fetch is None:
            raise LookupError(f"no source {media.source!r} can provide this file")
        return await fetch(media)
