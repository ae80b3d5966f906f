"""Acting on conversations: opening a customer's thread, sending into it, noting in it, closing it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId

from gateway.events import EventBus, MessageStored, ThreadClosed
from gateway.logs import log_context
from gateway.model import (
    Author,
    Contact,
    Content,
    Direction,
    IdentityRef,
    Kind,
    Message,
    MessageStatus,
    Notice,
    Thread,
    utcnow,
)
from gateway.outbox import Outbox
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    """What an operator, the API or the system wants to send into a thread."""

    content: Content
    id: ObjectId | None = None
    author: Author = Author.OPERATOR
    author_id: int | None = None
    author_name: str | None = None
    origin: tuple[int, int] | None = None  # the operator's own message it was made from (chat, message id)
    quoted: Message | None = None  # the stored message content.reply_to names, when the caller has read it


class Conversations:
    """Opens, writes into and closes threads; every outbound message is stored before the outbox sends it."""

    def __init__(self, store: Storage, bus: EventBus, outbox: Outbox) -> None:
        self.store = store
        self.bus = bus
        self.outbox = outbox

    async def open_for(
        self, contact: Contact, ref: IdentityRef, now: datetime, *, first: bool = False, unread: int = 0
    ) -> tuple[Thread, bool]:
        """The contact's open thread, or a new one linked to their last (True when this call opened it).

        A blocked customer's messages are kept on their last thread, which stays closed. `first`: the card was
        just created, so there is nothing to look for. A thread this call opens starts with `unread` messages.
        """
        if first:
            new, _ = await self.store.threads.open(contact.id, ref.key, ref.channel, now, None, unread=unread)
            return new, True
        thread = await self.store.threads.open_for(contact.id)
        if thread is not None:
            return thread, False
        previous = await self.store.threads.latest_for(contact.id)
        if contact.blocked and previous is not None:
            return previous, False
        return await self.store.threads.open(contact.id, ref.key, ref.channel, now, previous, unread=unread)

    async def send(self, thread: Thread, draft: Draft, *, read: bool = False) -> Message:
        """Store an outbound message, then hand it to the thread's channel; returns it with its status.

        `read`: its author answers having read the thread, so nothing in it is unread any more.
        """
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
                origin=draft.origin,
                channel=thread.channel,
                account=thread.identity_ref.account,
                identity=thread.identity,
                created_at=now,
                status=MessageStatus.QUEUED,
                next_attempt_at=self.outbox.lease_until(now),
            )
            await self.store.messages.insert(message)
            by_operator = draft.author is Author.OPERATOR
            await self.store.threads.record_outbound(thread.id, now, by_operator=by_operator, read=read)
            self.bus.publish(MessageStored(thread=thread, message=message))
            return await self.outbox.submit(message, thread, quoted=draft.quoted)

    async def note(
        self,
        thread: Thread,
        text: str = "",
        *,
        notice: Notice | None = None,
        author: Author = Author.SYSTEM,
        author_id: int | None = None,
        author_name: str | None = None,
    ) -> Message:
        """Store an internal message in a thread: seen by operators, never sent to the customer.

        Operators write `text`; the gateway writes a `notice`, translated where it is shown.
        """
        message = Message(
            id=ObjectId(),
            thread_id=thread.id,
            contact_id=thread.contact_id,
            direction=Direction.INTERNAL,
            content=Content(Kind.EVENT, text),
            notice=notice,
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
