"""The hub: ingestion, idempotency, reopening, edits, outbound records."""

from __future__ import annotations

import asyncio
import contextvars

from aiohttp.test_utils import TestClient
from pymongo import monitoring

from channels.base import InboundMessage, Profile
from gateway.conversations import Draft
from gateway.events import MessageEdited, MessageReceived, ThreadClosed
from gateway.keys import CONVERSATIONS, INBOX, STORE
from gateway.model import (
    Author,
    Content,
    Direction,
    IdentityRef,
    Kind,
    MessageStatus,
    ThreadStatus,
)
from tests.helpers import collect, settle

ANN = IdentityRef("webwidget", "web", "visitor-ann")


def text(message_id: str, body: str = "hello", sender: IdentityRef = ANN, **kw) -> InboundMessage:
    content = Content(Kind.TEXT, body, reply_to=kw.pop("reply_to", None))
    return InboundMessage(sender=sender, message_id=message_id, content=content, **kw)


async def test_first_message_creates_contact_thread_and_message(gateway: TestClient) -> None:
    received = collect(gateway.app, MessageReceived)
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    stored = await inbox.on_inbound(
        text("m1", "Where is my order?", profile=Profile(display_name="Ann Lee", language="en"))
    )
    await settle(gateway.app)

    contact = await store.contacts.by_identity(ANN.key)
    assert contact.identities[0].display_name == "Ann Lee" and contact.language == "en"
    assert contact.identities[0].last_inbound_at is not None
    thread = await store.threads.open_for(contact.id)
    assert thread.status is ThreadStatus.QUEUED and thread.unread == 1 and thread.number >= 1
    assert thread.identity == ANN.key and thread.channel == "webwidget"
    message = await store.messages.get(stored.id)
    assert (message.direction, message.author, message.content.text, message.thread_id) == (
        Direction.IN,
        Author.CONTACT,
        "Where is my order?",
        thread.id,
    )
    assert len(received) == 1 and received[0].opened and received[0].message.id == stored.id


async def test_redelivery_stores_one_message(gateway: TestClient) -> None:
    received = collect(gateway.app, MessageReceived)
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    first = await inbox.on_inbound(text("m1"))
    again = await inbox.on_inbound(text("m1"))
    concurrent = await asyncio.gather(*(inbox.on_inbound(text("m2")) for _ in range(10)))
    await settle(gateway.app)

    assert again.id == first.id
    assert len({m.id for m in concurrent}) == 1
    assert await store.messages.collection.count_documents({}) == 2
    assert len(received) == 2
    thread = await store.threads.open_for((await store.contacts.by_identity(ANN.key)).id)
    assert thread.unread == 2


async def test_concurrent_first_messages_make_one_contact_and_one_thread(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await asyncio.gather(*(inbox.on_inbound(text(f"m{n}")) for n in range(20)))
    assert await store.contacts.collection.count_documents({}) == 1
    assert await store.threads.collection.count_documents({}) == 1
    assert await store.messages.collection.count_documents({}) == 20


async def test_message_after_close_opens_a_new_linked_thread(gateway: TestClient) -> None:
    closed_events = collect(gateway.app, ThreadClosed)
    received = collect(gateway.app, MessageReceived)
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await inbox.on_inbound(text("m1", "first problem"))
    contact = await store.contacts.by_identity(ANN.key)
    first = await store.threads.open_for(contact.id)
    assert (await gateway.app[CONVERSATIONS].close(first, by=7)).status is ThreadStatus.CLOSED
    assert await gateway.app[CONVERSATIONS].close(first, by=7) is None  # closing twice changes nothing

    await inbox.on_inbound(text("m2", "second problem"))
    await settle(gateway.app)
    second = await store.threads.open_for(contact.id)
    assert second.id != first.id and second.number > first.number
    assert second.previous_thread_id == first.id and second.status is ThreadStatus.QUEUED
    closed = await store.threads.get(first.id)
    assert closed.closed_by == 7 and closed.closed_at is not None and not closed.open
    assert [e.thread.id for e in closed_events] == [first.id]
    assert [e.opened for e in received] == [True, True]
    history = await inbox.history(ANN)
    assert [m.content.text for m in history] == ["first problem", "second problem"]


async def test_edit_replaces_text_and_keeps_the_original(gateway: TestClient) -> None:
    edits = collect(gateway.app, MessageEdited)
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    original = await inbox.on_inbound(text("m1", "I ordred two"))
    await inbox.on_inbound(text("m1:edit:1", "I ordered two", edit_of="m1"))
    await inbox.on_inbound(text("m1:edit:1", "I ordered two", edit_of="m1"))  # re-delivered edit
    await settle(gateway.app)

    message = await store.messages.get(original.id)
    assert message.content.text == "I ordered two" and message.edits == ("I ordred two",) and message.edited_at
    assert await store.messages.collection.count_documents({}) == 1
    assert len(edits) == 1 and edits[0].message.content.text == "I ordered two"


async def test_reply_links_to_the_replied_message(gateway: TestClient) -> None:
    inbox = gateway.app[INBOX]
    first = await inbox.on_inbound(text("m1", "photo attached"))
    reply = await inbox.on_inbound(text("m2", "see above", reply_to="m1"))
    unknown = await inbox.on_inbound(text("m3", "reply to something old", reply_to="m0"))
    assert reply.content.reply_to == str(first.id) and unknown.content.reply_to is None


async def test_profile_phones_and_emails_are_normalised(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await inbox.on_inbound(text("m1", profile=Profile(phone="(415) 555-2671", email=" Ann@Example.com")))
    await inbox.on_inbound(text("m2", profile=Profile(phone="+1 415 555 2671")))  # same number again
    await inbox.on_inbound(text("m3", profile=Profile(phone="12345")))  # not a valid number
    contact = await store.contacts.by_identity(ANN.key)
    assert contact.phones == ("+14155552671",)
    assert contact.emails == ("ann@example.com",)
    assert contact.other_phones == ("12345",)
    assert [c.id for c in await store.contacts.by_phone("+14155552671")] == [contact.id]


async def test_outbound_is_stored_with_its_status_and_first_response(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await inbox.on_inbound(text("m1"))
    thread = await store.threads.open_for((await store.contacts.by_identity(ANN.key)).id)
    sent = await gateway.app[CONVERSATIONS].send(
        thread, Draft(Content(text="We are on it"), author_id=5, author_name="Maria")
    )

    stored = await store.messages.get(sent.id)
    # Nobody has the widget open, so the reply waits in the visitor's history.
    assert stored.status is MessageStatus.SENT and stored.direction is Direction.OUT
    assert stored.author_name == "Maria" and stored.attempts == 1 and stored.next_attempt_at is None
    assert (await store.threads.get(thread.id)).first_response_at is not None
    assert [m.content.text for m in await inbox.history(ANN)] == ["hello", "We are on it"]


async def test_send_on_an_unconfigured_channel_fails_with_the_reason(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    telegram_user = IdentityRef("telegram", "support", "4242")
    await inbox.on_inbound(text("4242:1", sender=telegram_user))
    thread = await store.threads.open_for((await store.contacts.by_identity(telegram_user.key)).id)
    failed = await gateway.app[CONVERSATIONS].send(thread, Draft(Content(text="hi")))
    assert failed.status is MessageStatus.FAILED
    assert failed.error == "the telegram channel is not configured" and failed.error_code == "unavailable"
    assert (await store.messages.get(failed.id)).status is MessageStatus.FAILED


async def test_internal_notes_never_reach_the_customer(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await inbox.on_inbound(text("m1"))
    thread = await store.threads.open_for((await store.contacts.by_identity(ANN.key)).id)
    await gateway.app[CONVERSATIONS].note(thread, "VIP customer, be nice", author=Author.OPERATOR, author_id=5)
    assert [m.content.text for m in await inbox.history(ANN)] == ["hello"]
    assert [m.direction for m in await store.messages.for_thread(thread.id)] == [Direction.IN, Direction.INTERNAL]


class Commands(monitoring.CommandListener):
    """The database commands sent from a task that set `RECORDING` (background loops never do)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        names = RECORDING.get()
        if names is not None:
            names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


RECORDING: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("recording", default=None)
monitoring.register(Commands())  # clients made from here on report to it


async def commands_for(inbox, message: InboundMessage) -> list[str]:
    """The commands one message costs before it is acknowledged."""
    names: list[str] = []
    token = RECORDING.set(names)
    try:
        await inbox.on_inbound(message)
    finally:
        RECORDING.reset(token)
    return names


async def test_a_known_customer_with_an_open_thread_costs_three_commands(gateway: TestClient) -> None:
    inbox = gateway.app[INBOX]
    await inbox.on_inbound(text("m1", profile=Profile(display_name="Ann Lee")))
    await settle(gateway.app)

    known = await commands_for(inbox, text("m2", "are you there?", profile=Profile(display_name="Ann Lee")))
    again = await commands_for(inbox, text("m2", "are you there?", profile=Profile(display_name="Ann Lee")))
    await settle(gateway.app)

    assert known == ["findAndModify", "findAndModify", "insert"]
    # A re-delivery finds the message stored: the unread count it added is taken back, the stored one returned.
    assert again == ["findAndModify", "findAndModify", "insert", "update", "find"]
    thread = await gateway.app[STORE].threads.open_for((await gateway.app[STORE].contacts.by_identity(ANN.key)).id)
    assert thread.unread == 2


async def test_a_first_time_customer_costs_few_commands(gateway: TestClient) -> None:
    inbox = gateway.app[INBOX]
    first = await commands_for(inbox, text("m1", profile=Profile(display_name="Ann Lee")))

    # No card for the identity: create it, number and open the thread (counting the message unread), store it.
    assert first == ["findAndModify", "insert", "findAndModify", "insert", "insert"]
    store = gateway.app[STORE]
    contact = await store.contacts.owner(ANN.key)
    assert contact is not None
    thread = await store.threads.open_for(contact.id)
    assert thread is not None and thread.unread == 1

    # The same message again stores nothing and counts nothing.
    await inbox.on_inbound(text("m1"))
    assert (await store.threads.get(thread.id)).unread == 1


async def test_a_reply_quoting_a_message_the_caller_has_read_does_not_read_it_again(gateway: TestClient) -> None:
    inbox, store = gateway.app[INBOX], gateway.app[STORE]
    await inbox.on_inbound(text("m1", "where is my order?"))
    await settle(gateway.app)
    thread = await store.threads.open_for((await store.contacts.by_identity(ANN.key)).id)
    question = (await store.messages.for_thread(thread.id))[0]
    answer = Content(text="on its way", reply_to=str(question.id))

    async def commands(draft: Draft) -> list[str]:
        names: list[str] = []
        token = RECORDING.set(names)
        try:
            sent = await gateway.app[CONVERSATIONS].send(thread, draft)
        finally:
            RECORDING.reset(token)
        assert sent.content.reply_to == str(question.id) and sent.status is not MessageStatus.FAILED
        return names

    at_hand = await commands(Draft(answer, quoted=question))
    looked_up = await commands(Draft(answer))
    # The second reads the quoted message to find what the channel calls it; the first already has it.
    assert looked_up.count("find") == at_hand.count("find") + 1
