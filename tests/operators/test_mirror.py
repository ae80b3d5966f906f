"""The supervisors' forum mirror: a topic per conversation, both sides in order, supervisors answering there."""

from __future__ import annotations

import logging

import pytest

from channels.base import InboundMessage, Profile
from gateway.keys import BUS, CONVERSATIONS, INBOX
from gateway.model import Author, Content, IdentityRef, Kind, Thread
from tests.emulators.telegram import SentMessage, TelegramEmulator
from tests.helpers import Widget, settle
from tests.operators.conftest import BOSS, OLGA, OPERATOR_BOT, SAM, SUPERVISORS, Desk, OpenDesk, open_forum

NOT_A_FORUM = -1009999999999


@pytest.fixture
async def forum(tg: TelegramEmulator, open_desk: OpenDesk) -> Desk:
    """The desk with a supervisors' forum supergroup that Boss and Olga are in."""
    return await open_forum(tg, open_desk)


def topic_messages(desk: Desk, topic_id: int) -> list[SentMessage]:
    return [m for m in desk.chat(SUPERVISORS) if m.message_thread_id == topic_id]


def topic_texts(desk: Desk, topic_id: int) -> list[str]:
    return [m.text or m.caption or "" for m in topic_messages(desk, topic_id)]


async def thread_of(desk: Desk, text: str) -> Thread:
    message = await desk.store.messages.collection.find_one({"text": text})
    thread = await desk.store.threads.get(message["thread_id"])
    assert thread is not None
    return thread


async def write_in_topic(desk: Desk, who: int, topic_id: int | None, text: str) -> int:
    update = desk.tg.text_update(OPERATOR_BOT, who, text, chat_id=SUPERVISORS, message_thread_id=topic_id)
    assert await desk.send(update) == 200
    return update["message"]["message_id"]


async def test_each_conversation_gets_a_topic_with_the_card_then_both_sides_in_order(forum: Desk) -> None:
    await forum.online(OLGA)
    await forum.visitor("Hello, my parcel is late", "a-1")
    thread = await thread_of(forum, "Hello, my parcel is late")
    topics = forum.tg.topics(SUPERVISORS)
    assert [topic.name for topic in topics.values()] == [f"#{thread.number} · Visitor"]
    topic_id = next(iter(topics))
    assert (await forum.store.threads.get(thread.id)).topic_id == topic_id

    await forum.say(OLGA, "We are looking into it")
    await forum.app[CONVERSATIONS].note(
        thread, "Customer is a VIP", author=Author.OPERATOR, author_id=OLGA, author_name="Olga"
    )
    await settle(forum.app)
    await forum.visitor("Order 1234", "a-2")  # another visitor: their own topic
    n = thread.number
    texts = topic_texts(forum, topic_id)
    assert texts[0].startswith(f"#{n} · Visitor · Web chat")  # the card, with its buttons
    assert topic_messages(forum, topic_id)[0].reply_markup is not None
    assert texts[1:] == [
        f"#{n} · Hello, my parcel is late",
        f"👤 #{n} is now with Olga.",
        f"#{n} · → Olga: We are looking into it",
        f"#{n} · 📝 Customer is a VIP",
    ]
    assert len(forum.tg.topics(SUPERVISORS)) == 2
    other = await thread_of(forum, "Order 1234")
    other_topic = (await forum.store.threads.get(other.id)).topic_id
    assert other_topic != topic_id and topic_texts(forum, other_topic)[1] == f"#{other.number} · Order 1234"
    # Nothing goes to the General topic.
    assert all(m.message_thread_id is not None for m in forum.chat(SUPERVISORS))


async def test_queued_conversation_is_mirrored_with_the_busy_notice_and_its_assignment(forum: Desk) -> None:
    await forum.visitor("anyone there?", "a-1")
    thread = await thread_of(forum, "anyone there?")
    topic_id = (await forum.store.threads.get(thread.id)).topic_id
    n = thread.number
    assert topic_texts(forum, topic_id)[1:] == [
        f"#{n} · anyone there?",
        f"#{n} · 🤖 All our operators are busy right now. We will reply as soon as we can.",
    ]
    await forum.online(OLGA)
    await forum.online(SAM)
    await forum.say(BOSS, f"/assign {n} @sam")
    assert topic_texts(forum, topic_id)[3:] == [f"👤 #{n} is now with Olga.", f"👤 #{n} is now with Sam."]
    assert len(forum.tg.topics(SUPERVISORS)) == 1


async def test_customer_edits_are_mirrored_as_replies(forum: Desk) -> None:
    inbox, ref = forum.app[INBOX], IdentityRef("telegram", "support", "4242")
    await inbox.on_inbound(
        InboundMessage(
            sender=ref,
            message_id="4242:1",
            content=Content(Kind.TEXT, "I ordered 3"),
            profile=Profile(display_name="Ann"),
        )
    )
    await settle(forum.app)
    await inbox.on_inbound(
        InboundMessage(sender=ref, message_id="4242:1:e1", content=Content(Kind.TEXT, "I ordered 4"), edit_of="4242:1")
    )
    await settle(forum.app)
    thread = await thread_of(forum, "I ordered 4")
    messages = topic_messages(forum, thread.topic_id)
    original = next(m for m in messages if m.text == f"#{thread.number} · I ordered 3")
    assert messages[-1].text == f"#{thread.number} · ✏️ edited: I ordered 4"
    assert messages[-1].reply_to_message_id == original.message_id


async def test_a_supervisor_writing_in_the_topic_answers_the_customer(forum: Desk) -> None:
    await forum.online(OLGA)
    widget = await forum.visitor("Can I get a refund?", "a-1")
    thread = await thread_of(forum, "Can I get a refund?")
    topic_id = (await forum.store.threads.get(thread.id)).topic_id
    in_topic = len(topic_messages(forum, topic_id))

    await write_in_topic(forum, BOSS, topic_id, "Yes, I approved it")
    frame = await widget.expect("message")
    assert frame["text"] == "Yes, I approved it" and frame["author"] == {"type": "operator", "name": "Boss"}
    stored = await forum.store.messages.collection.find_one({"text": "Yes, I approved it"})
    assert stored["direction"] == "out" and stored["author"] == "operator" and stored["author_id"] == BOSS
    assert stored["thread_id"] == thread.id
    assert len(topic_messages(forum, topic_id)) == in_topic  # the topic already shows it, as Boss wrote it
    assert forum.texts(OLGA)[-1] == f"#{thread.number} · → Boss: Yes, I approved it"  # the operator sees it

    # A Telegram reply to the customer's message in the topic answers that message.
    customer_copy = next(
        m for m in topic_messages(forum, topic_id) if m.text == f"#{thread.number} · Can I get a refund?"
    )
    update = forum.tg.text_update(
        OPERATOR_BOT, BOSS, "About that refund", chat_id=SUPERVISORS, reply_to=customer_copy.message_id
    )
    await forum.send(update)
    assert (await widget.expect("message"))["text"] == "About that refund"
    reply = await forum.store.messages.collection.find_one({"text": "About that refund"})
    question = await forum.store.messages.collection.find_one({"text": "Can I get a refund?"})
    assert reply["reply_to"] == str(question["_id"])


async def test_operators_general_topic_and_commands_in_the_forum_send_nothing(forum: Desk) -> None:
    await forum.online(OLGA)
    await forum.visitor("hello", "a-1")
    thread = await thread_of(forum, "hello")
    topic_id = (await forum.store.threads.get(thread.id)).topic_id

    olga_note = await write_in_topic(forum, OLGA, topic_id, "I'll take this one")
    await write_in_topic(forum, OLGA, topic_id, "really")
    refusals = [m for m in forum.chat(SUPERVISORS) if m.text and "Only supervisors" in m.text]
    assert len(refusals) == 1 and refusals[0].reply_to_message_id == olga_note  # told once
    await write_in_topic(forum, BOSS, None, "General chatter")  # the General topic
    assert await forum.store.messages.collection.count_documents({"direction": "out", "author": "operator"}) == 0
    assert not any(m.text and "General chatter" in m.text for m in forum.chat(SUPERVISORS))

    await write_in_topic(forum, BOSS, topic_id, "/queue")  # a command, answered in the topic
    assert forum.chat(SUPERVISORS)[-1].message_thread_id == topic_id
    assert forum.texts(SUPERVISORS)[-1] == "The queue is empty."
    assert await forum.store.messages.collection.count_documents({"direction": "out", "author": "operator"}) == 0


async def test_topic_closes_with_the_thread_and_a_new_thread_gets_a_new_topic(forum: Desk) -> None:
    await forum.online(OLGA)
    widget = await forum.visitor("first problem", "a-1")
    thread = await thread_of(forum, "first problem")
    topic_id = (await forum.store.threads.get(thread.id)).topic_id

    await forum.app[CONVERSATIONS].close(await forum.store.threads.get(thread.id), by=OLGA)
    await settle(forum.app)
    assert forum.tg.topics(SUPERVISORS)[topic_id].closed
    assert topic_texts(forum, topic_id)[-1] == f"🔒 #{thread.number} was closed by Olga."

    await write_in_topic(forum, BOSS, topic_id, "late answer")
    assert forum.texts(SUPERVISORS)[-1] == f"#{thread.number} is closed. Nothing was sent."
    assert await forum.store.messages.collection.count_documents({"text": "late answer", "direction": "out"}) == 0

    await widget.say("second problem", "a-2")
    await settle(forum.app)
    again = await thread_of(forum, "second problem")
    assert again.id != thread.id and again.topic_id not in (None, topic_id)
    assert not forum.tg.topics(SUPERVISORS)[again.topic_id].closed
    assert forum.tg.topics(SUPERVISORS)[topic_id].closed
    assert topic_texts(forum, again.topic_id)[1:3] == [
        f"#{again.number} · second problem",
        f"👤 #{again.number} is now with Olga.",
    ]


async def test_a_chat_without_topics_is_not_mirrored(
    tg: TelegramEmulator, open_desk: OpenDesk, caplog: pytest.LogCaptureFixture
) -> None:
    tg.supergroup(NOT_A_FORUM, "Supervisors", is_forum=False, members=[BOSS])
    desk = await open_desk(operator_bot={"supervisors_chat_id": NOT_A_FORUM})
    await desk.online(OLGA)
    with caplog.at_level(logging.WARNING, logger="operators.mirror"):
        await desk.visitor("hello", "a-1")
        await desk.visitor("hello again", "b-1")
    assert desk.chat(NOT_A_FORUM) == []
    assert len([r for r in caplog.records if "not a forum" in r.message]) == 1
    assert sum(text.endswith("· hello") for text in desk.texts(OLGA)) == 1  # operators work as before
    assert tg.calls("createForumTopic") == []


async def test_flood_control_on_the_mirror_group_never_holds_up_an_operator(forum: Desk) -> None:
    await forum.online(OLGA, SAM)
    # Telegram answers the mirror group with three 429s in a row (measured: they held every delivery ~15 s).
    forum.tg.fail(SUPERVISORS, 429, retry_after=30, times=3, method="createForumTopic")
    first = await Widget.connect(forum.client)
    await first.say("my first message", "a-1")
    second = await Widget.connect(forum.client)
    await second.say("another new customer", "b-1")
    await forum.app[BUS].drain()  # the operators' side is done; the mirror is still sitting out its wait
    one, two = await thread_of(forum, "my first message"), await thread_of(forum, "another new customer")
    shown = forum.texts(OLGA) + forum.texts(SAM)
    assert f"#{one.number} · my first message" in shown and f"#{two.number} · another new customer" in shown
    assert sum(text.startswith((f"#{one.number} · Visitor", f"#{two.number} · Visitor")) for text in shown) == 2
    assert forum.tg.topics(SUPERVISORS) == {}  # the mirror is behind, the operators are not


async def test_the_mirror_keeps_to_its_posts_per_minute_and_operators_do_not_wait_for_it(
    tg: TelegramEmulator, open_desk: OpenDesk
) -> None:
    tg.supergroup(SUPERVISORS, "Support supervisors", is_forum=True, members=[BOSS])
    desk = await open_desk(operator_bot={"supervisors_chat_id": SUPERVISORS, "supervisors_messages_per_minute": 3})
    await desk.online(OLGA)
    widget = await Widget.connect(desk.client)
    for i in range(4):
        await widget.say(f"question {i}", f"q-{i}")
    await desk.app[BUS].drain()
    # The topic, the card and one message: the minute's three posts; the rest waits for the window to move on.
    assert [r.method for r in tg.requests if r.params.get("chat_id") == SUPERVISORS][1:] == [
        "createForumTopic",
        "sendMessage",
        "sendMessage",
    ]
    assert all(any(text.endswith(f"question {i}") for text in desk.texts(OLGA)) for i in range(4))


async def test_a_deleted_topic_is_opened_again_and_the_message_shown_there(forum: Desk) -> None:
    await forum.online(OLGA)
    widget = await forum.visitor("where is my order?", "a-1")
    thread = await thread_of(forum, "where is my order?")
    old_topic = (await forum.store.threads.get(thread.id)).topic_id
    forum.tg.topics(SUPERVISORS)[old_topic].deleted = True  # a supervisor deleted the topic in Telegram

    await widget.say("hello? anyone?", "a-2")
    await settle(forum.app)
    new_topic = (await forum.store.threads.get(thread.id)).topic_id
    assert new_topic not in (None, old_topic) and not forum.tg.topics(SUPERVISORS)[new_topic].deleted
    n = thread.number
    texts = topic_texts(forum, new_topic)
    assert texts[0].startswith(f"#{n} · Visitor")  # the card again
    assert texts.count(f"#{n} · hello? anyone?") == 1 and f"#{n} · where is my order?" in texts
    # A supervisor writing in the new topic reaches the customer.
    await write_in_topic(forum, BOSS, new_topic, "On its way")
    assert (await widget.expect("message"))["text"] == "On its way"
