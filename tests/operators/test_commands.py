"""The operators' commands and card buttons, through the operator bot on the Telegram emulator."""

from __future__ import annotations

import string

import pytest

from gateway.model import Author, Direction, Thread, ThreadStatus, utcnow
from operators.texts import commands
from tests.emulators.telegram import SentMessage
from tests.helpers import AUTH, Widget, settle
from tests.operators.conftest import BOSS, OLGA, SAM, Desk, OpenDesk

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


@pytest.fixture
async def closing_desk(open_desk: OpenDesk) -> Desk:
    """The desk with a closing message configured in English and Russian."""
    return await open_desk(
        routing={"closing_message": {"en": "Thanks for contacting us!", "ru": "Спасибо за обращение!"}}
    )


async def thread_of(desk: Desk, text: str) -> Thread:
    """The thread a customer message with this text is in, as stored now."""
    message = await desk.store.messages.collection.find_one({"text": text})
    assert message is not None, text
    thread = await desk.store.threads.get(message["thread_id"])
    assert thread is not None
    return thread


def card_of(desk: Desk, chat_id: int, number: int) -> SentMessage:
    """The latest card of a thread in an operator's chat."""
    return [m for m in desk.chat(chat_id) if m.reply_markup and m.text and m.text.startswith(f"#{number} · ")][-1]


def buttons(message: SentMessage) -> list[str]:
    return [b["callback_data"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def last(desk: Desk, chat_id: int) -> str:
    return desk.texts(chat_id)[-1]


async def quiet(widget: Widget, client_id: str) -> None:
    """Assert nothing was pushed to the visitor: their next message's ack is the next frame."""
    await widget.ws.send_json({"type": "message", "text": "sync", "client_id": client_id})
    assert [f["type"] for f in await widget.frames_until("ack")] == ["ack"]


# -- /chats, /chat, /next -------------------------------------------------------------------------


async def test_chats_lists_unread_and_idle_time_and_marks_the_active_one(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("I'm Ann", "a-1")
    bob = await desk.visitor("I'm Bob", "b-1")
    await bob.say("Still there?", "b-2")
    await settle(desk.app)
    ann_thread, bob_thread = await thread_of(desk, "I'm Ann"), await thread_of(desk, "I'm Bob")

    await desk.say(OLGA, "/chats")
    listing = desk.chat(OLGA)[-1]
    assert "Your conversations (2)" in listing.text
    assert f"#{ann_thread.number} · Visitor · Web chat\n    unread: 1 · quiet for" in listing.text
    assert f"#{bob_thread.number} · Visitor · Web chat\n    unread: 2 · quiet for" in listing.text
    assert "✅" not in listing.text  # two chats and none chosen: plain messages would be refused
    assert sorted(buttons(listing)) == sorted([f"pick:{ann_thread.number}", f"pick:{bob_thread.number}"])

    await desk.say(OLGA, f"/chat #{bob_thread.number}")
    assert last(desk, OLGA) == f"#{bob_thread.number} is your active conversation: plain messages go there now."
    await desk.say(OLGA, "/chats")
    assert f"#{bob_thread.number} · Visitor · Web chat · ✅ active\n" in last(desk, OLGA)
    assert f"#{ann_thread.number} · Visitor · Web chat\n" in last(desk, OLGA)

    await desk.say(OLGA, "Hello Bob")
    assert (await bob.expect("message"))["text"] == "Hello Bob"
    await desk.say(OLGA, "/chats")
    assert f"#{bob_thread.number} · Visitor · Web chat · ✅ active\n    unread: 0" in last(desk, OLGA)

    await desk.say(SAM, "/chats")
    assert last(desk, SAM) == "У вас нет открытых диалогов. /next возьмёт диалог из очереди."


async def test_chat_explains_unknown_foreign_and_closed_conversations(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("first", "a-1")
    thread = await thread_of(desk, "first")

    await desk.say(OLGA, "/chat")
    assert last(desk, OLGA) == "Give a conversation number, e.g. /chat 17."
    await desk.say(OLGA, "/chat 999")
    assert last(desk, OLGA) == "There is no conversation #999."
    await desk.say(SAM, f"/chat {thread.number}")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    await desk.say(OLGA, f"/close {thread.number}")
    await desk.say(OLGA, f"/chat {thread.number}")
    assert last(desk, OLGA) == f"#{thread.number} is closed."
    assert (await desk.store.operators.get(OLGA)).active_thread_id is None


async def test_next_takes_the_longest_waiting_conversation_and_explains_when_it_cannot(desk: Desk) -> None:
    await desk.say(OLGA, "/next")
    assert last(desk, OLGA) == "You are offline. Go /online to take conversations from the queue."

    await desk.online(OLGA)
    for name in ("one", "two", "three"):
        await desk.visitor(f"customer {name}", name)
    await desk.visitor("waiting longest", "w-1")
    await desk.visitor("waiting less", "w-2")
    longest, later = await thread_of(desk, "waiting longest"), await thread_of(desk, "waiting less")
    assert longest.status is ThreadStatus.QUEUED and later.status is ThreadStatus.QUEUED

    await desk.say(OLGA, "/next")
    assert last(desk, OLGA) == "You already have 3/3 conversations. Close one first."
    assert (await desk.store.threads.get(longest.id)).operator_id is None

    await desk.store.operators.update(OLGA, {"max_chats": 4})  # a supervisor raised her capacity
    await desk.say(OLGA, "/next")
    assert f"#{longest.number} is yours and active now." in desk.texts(OLGA)
    assert (await desk.store.threads.get(longest.id)).operator_id == OLGA
    assert (await desk.store.threads.get(later.id)).operator_id is None
    assert (await desk.store.operators.get(OLGA)).active_thread_id == longest.id
    assert any(text.startswith(f"#{longest.number} · Visitor") for text in desk.texts(OLGA))  # the card

    await desk.online(BOSS)  # takes the other waiting one
    assert (await desk.store.threads.get(later.id)).operator_id == BOSS
    await desk.say(BOSS, "/next")
    assert last(desk, BOSS) == "The queue is empty."
    await desk.say(SAM, "/next")
    assert last(desk, SAM) == "Ваш статус: офлайн. Выйдите /online, чтобы брать диалоги из очереди."


async def test_plain_message_after_next_goes_to_the_taken_conversation(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.store.operators.update(OLGA, {"max_chats": 1})
    await desk.visitor("first", "a-1")
    waiting = await desk.visitor("second", "b-1")
    await desk.store.operators.update(OLGA, {"max_chats": 2})
    await desk.say(OLGA, "/next")
    await desk.say(OLGA, "You're next!")
    assert (await waiting.expect("message"))["author"] == {"type": "system"}  # the busy notice while waiting
    assert (await waiting.expect("message"))["text"] == "You're next!"


# -- /history -------------------------------------------------------------------------------------


async def test_history_pages_through_every_conversation_of_the_customer(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("old question", "a-0")
    first = await thread_of(desk, "old question")
    await desk.say(OLGA, "/close")
    for i in range(1, 13):
        await ann.say(f"new {i}", f"a-{i}")
    await settle(desk.app)
    second = await thread_of(desk, "new 1")
    assert second.id != first.id and second.operator_id == OLGA

    await desk.say(OLGA, f"/history {second.number}")
    page = desk.chat(OLGA)[-1]
    lines = page.text.split("\n")
    assert lines[0] == "History of Visitor, page 1/2 (newest first):"
    assert [line.split(" ", 2)[2] for line in lines[1:]] == [f"#{second.number} · new {i}" for i in range(3, 13)]
    assert buttons(page) == [f"hist:{second.number}:2"]

    await desk.press(OLGA, page.message_id, f"hist:{second.number}:2")
    edited = desk.tg.edits(OLGA)[-1]
    assert edited.message_id == page.message_id
    assert edited.text.split("\n")[0] == "History of Visitor, page 2/2 (newest first):"
    assert [line.split(" ", 2)[2] for line in edited.text.split("\n")[1:]] == [
        f"#{first.number} · old question",
        f"#{second.number} · new 1",
        f"#{second.number} · new 2",
    ]
    assert buttons(edited) == [f"hist:{second.number}:1"]
    await desk.press(OLGA, page.message_id, f"hist:{second.number}:1")
    assert desk.tg.edits(OLGA)[-1].text.split("\n")[0] == "History of Visitor, page 1/2 (newest first):"

    await desk.say(OLGA, f"/history {first.number} 2")  # any thread of the customer, any page
    assert last(desk, OLGA).split("\n")[0] == "History of Visitor, page 2/2 (newest first):"

    card = card_of(desk, OLGA, second.number)
    await desk.press(OLGA, card.message_id, f"history:{second.number}")
    assert desk.tg.callback_answers[-1].text is None
    assert last(desk, OLGA).split("\n")[0] == "History of Visitor, page 1/2 (newest first):"


async def test_history_is_refused_for_unknown_and_foreign_conversations(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("private matter", "a-1")
    thread = await thread_of(desk, "private matter")
    await desk.say(OLGA, "/history")
    assert last(desk, OLGA) == "Give a conversation number, e.g. /history 17."
    await desk.say(OLGA, "/history 404")
    assert last(desk, OLGA) == "There is no conversation #404."
    await desk.say(SAM, f"/history {thread.number}")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    await desk.say(BOSS, f"/history {thread.number}")  # supervisors see everything
    assert f"#{thread.number} · private matter" in last(desk, BOSS)


# -- /info ----------------------------------------------------------------------------------------


async def test_info_shows_the_customer_card_with_visitor_details(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await Widget.connect(desk.client, headers={"Origin": "https://shop.example", "User-Agent": CHROME})
    await ann.say("hi", "a-1")
    await ann.ws.send_json({"type": "page", "url": "https://shop.example/checkout", "title": "Checkout"})
    await ann.ws.send_json(
        {"type": "identify", "name": "Ann Lee", "email": "Ann@Example.com", "phone": "+1 415 555 2671"}
    )
    await ann.say("can you help?", "a-2")
    await settle(desk.app)
    thread = await thread_of(desk, "hi")
    await desk.say(OLGA, f"/note {thread.number} Prefers e-mail")
    response = await desk.client.patch(
        f"/api/v1/visitors/{ann.token}", headers=AUTH, json={"attributes": {"plan": "pro", "city": "Berlin"}}
    )
    assert response.status == 200
    # Only a merge of two cards that disagreed leaves conflicting values.
    await desk.store.contacts.update(
        thread.contact_id, utcnow(), set_fields={"attribute_conflicts.city": ["Berlin", "Paris"]}
    )

    await desk.say(OLGA, f"/info {thread.number}")
    info = last(desk, OLGA)
    assert info.startswith(f"👤 Ann Lee · #{thread.number}")
    for expected in (
        "📞 +1 415-555-2671",
        "✉️ ann@example.com",
        "\n• Web chat: ",
        "• plan: pro",
        "• city: Berlin | Paris (values differ)",
        "• Prefers e-mail (Olga,",
        "💻 Chrome 120 / Windows 10",
        "🌐 IP 127.0.0.1",
        "↪️ Came from https://search.example/",
        "📄 Checkout — https://shop.example/checkout",
        "• Pricing — https://shop.example/pricing",
        f"• #{thread.number} · Web chat · ",
        f"Edit: /info {thread.number} name|email|phone value",
    ):
        assert expected in info, expected
    assert info.split("• Web chat: ")[1].split("\n")[0].endswith(" · reachable")
    pages = info[info.index("Recent pages:") :]
    assert pages.index("Checkout") < pages.index("Pricing")  # newest first

    card = card_of(desk, OLGA, thread.number)
    await desk.press(OLGA, card.message_id, f"info:{thread.number}")
    assert last(desk, OLGA) == info


async def test_info_edits_normalise_and_bad_input_changes_nothing(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("hello", "a-1")
    thread = await thread_of(desk, "hello")
    n = thread.number

    await desk.say(OLGA, f"/info {n} phone (415) 555-2671")
    assert last(desk, OLGA) == f"Saved on the card of #{n}: phone +1 415-555-2671."
    await desk.say(OLGA, f"/info {n} email  Ann.Lee@Example.COM ")
    assert last(desk, OLGA) == f"Saved on the card of #{n}: e-mail ann.lee@example.com."
    await desk.say(OLGA, f"/info {n} name Ann Lee")
    assert last(desk, OLGA) == f"Saved on the card of #{n}: name Ann Lee."
    contact = await desk.store.contacts.get(thread.contact_id)
    assert contact.phones == ("+14155552671",) and contact.emails == ("ann.lee@example.com",)
    assert contact.name == "Ann Lee"

    await desk.say(OLGA, f"/info {n} email ann at example")
    assert last(desk, OLGA) == "“ann at example” is not a valid e-mail address. Nothing was changed."
    await desk.say(OLGA, f"/info {n} phone 12")
    assert last(desk, OLGA) == "“12” is not a valid phone number. Nothing was changed."
    await desk.say(OLGA, f"/info {n} shoe size 42")
    assert last(desk, OLGA) == "Usage: /info 17, or /info 17 name|email|phone value."
    assert await desk.store.contacts.get(thread.contact_id) == contact

    await desk.say(SAM, f"/info {n} name Someone Else")
    assert last(desk, SAM) == f"#{n} — не ваш диалог."
    assert (await desk.store.contacts.get(thread.contact_id)).name == "Ann Lee"


# -- /close ---------------------------------------------------------------------------------------


async def test_close_sends_the_closing_message_and_the_next_message_opens_a_linked_thread(closing_desk: Desk) -> None:
    desk = closing_desk
    await desk.online(OLGA)
    ann = await desk.visitor("my order is late", "a-1")
    thread = await thread_of(desk, "my order is late")

    await desk.say(OLGA, "/close")  # her only conversation
    assert last(desk, OLGA) == f"#{thread.number} is closed; the customer got the closing message."
    frame = await ann.expect("message")
    assert frame["text"] == "Thanks for contacting us!" and frame["author"] == {"type": "system"}
    closed = await desk.store.threads.get(thread.id)
    assert closed.status is ThreadStatus.CLOSED and closed.closed_by == OLGA
    assert (await desk.store.operators.get(OLGA)).chats == ()
    system = await desk.store.messages.collection.find({"author": Author.SYSTEM.value}).to_list()
    assert [m["text"] for m in system] == ["Thanks for contacting us!"]

    await ann.say("one more thing", "a-2")
    await settle(desk.app)
    reopened = await thread_of(desk, "one more thing")
    assert reopened.id != thread.id and reopened.previous_thread_id == thread.id
    card = card_of(desk, OLGA, reopened.number)
    assert f"The customer wrote again after #{thread.number} was closed." in card.text

    await desk.say(OLGA, f"/close {thread.number}")
    assert last(desk, OLGA) == f"#{thread.number} is already closed."


async def test_close_in_the_customers_language_and_by_the_card_button(closing_desk: Desk) -> None:
    desk = closing_desk
    await desk.online(OLGA)
    ivan = await Widget.connect(desk.client, language="ru")
    await ivan.say("Здравствуйте", "i-1")
    await settle(desk.app)
    thread = await thread_of(desk, "Здравствуйте")
    await desk.press(OLGA, card_of(desk, OLGA, thread.number).message_id, f"close:{thread.number}")
    assert last(desk, OLGA) == f"#{thread.number} is closed; the customer got the closing message."
    assert (await ivan.expect("message"))["text"] == "Спасибо за обращение!"
    assert not (await desk.store.threads.get(thread.id)).open


async def test_close_asks_which_one_and_refuses_what_is_not_yours(desk: Desk) -> None:
    await desk.say(OLGA, "/close")
    assert last(desk, OLGA) == "You have no open conversations."
    await desk.online(OLGA)
    ann = await desk.visitor("I'm Ann", "a-1")
    await desk.visitor("I'm Bob", "b-1")
    ann_thread, bob_thread = await thread_of(desk, "I'm Ann"), await thread_of(desk, "I'm Bob")

    await desk.say(OLGA, "/close")
    question = desk.chat(OLGA)[-1]
    assert question.text == "You have 2 open conversations. Which one do you want to close?"
    assert sorted(buttons(question)) == sorted([f"close:{ann_thread.number}", f"close:{bob_thread.number}"])
    await desk.press(OLGA, question.message_id, f"close:{ann_thread.number}")
    assert last(desk, OLGA) == f"#{ann_thread.number} is closed."  # no closing message configured
    assert not (await desk.store.threads.get(ann_thread.id)).open
    await quiet(ann, "a-2")  # nothing was sent to the customer

    await desk.say(SAM, f"/close {bob_thread.number}")
    assert last(desk, SAM) == f"#{bob_thread.number} — не ваш диалог."
    await desk.say(OLGA, "/close 999")
    assert last(desk, OLGA) == "There is no conversation #999."
    assert (await desk.store.threads.get(bob_thread.id)).open

    await desk.say(BOSS, f"/close {bob_thread.number}")  # a supervisor closes anyone's conversation
    assert last(desk, BOSS) == f"#{bob_thread.number} is closed."
    assert last(desk, OLGA) == f"#{bob_thread.number} was closed by Boss."


# -- /transfer ------------------------------------------------------------------------------------


async def test_transfer_to_an_operator_with_a_comment_only_operators_see(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("I want a refund", "a-1")
    await desk.online(SAM)
    thread = await thread_of(desk, "I want a refund")
    assert thread.operator_id == OLGA

    await desk.say(OLGA, f"/transfer {thread.number} @sam Refund over 100 EUR, approved by Boss")
    assert f"#{thread.number} is now with Sam." in desk.texts(OLGA)
    assert f"#{thread.number} was moved to Sam." in desk.texts(OLGA)
    moved = await desk.store.threads.get(thread.id)
    assert moved.operator_id == SAM and moved.transfers[-1].comment == "Refund over 100 EUR, approved by Boss"
    assert moved.transfers[-1].from_operator == OLGA and moved.transfers[-1].by == OLGA
    sam_card = card_of(desk, SAM, thread.number)
    assert "💬 Комментарий при передаче от Olga: Refund over 100 EUR, approved by Boss" in sam_card.text

    note = await desk.store.messages.collection.find_one({"text": "Refund over 100 EUR, approved by Boss"})
    assert note["direction"] == Direction.INTERNAL.value
    await quiet(ann, "a-2")  # the comment never reached the customer

    olga_before = len(desk.chat(OLGA))
    await ann.say("Any news?", "a-3")
    await settle(desk.app)
    assert desk.texts(SAM)[-1] == f"#{thread.number} · Any news?"
    assert len(desk.chat(OLGA)) == olga_before


async def test_transfer_to_a_group_and_to_unknown_targets(desk: Desk) -> None:
    await desk.store.operators.update(SAM, {"groups": ["billing"]})
    await desk.store.operators.update(BOSS, {"groups": ["vip"]})
    await desk.online(OLGA)
    await desk.visitor("invoice please", "a-1")
    await desk.visitor("I'm important", "b-1")
    await desk.online(SAM)
    invoice, vip = await thread_of(desk, "invoice please"), await thread_of(desk, "I'm important")

    await desk.say(OLGA, f"/transfer {invoice.number} billing Needs a corrected invoice")
    assert f"#{invoice.number} went to group billing: Sam has it now." in desk.texts(OLGA)
    moved = await desk.store.threads.get(invoice.id)
    assert moved.operator_id == SAM and moved.group == "billing"
    card = next(text for text in desk.texts(SAM) if text.startswith(f"#{invoice.number} · "))
    assert "Комментарий при передаче от Olga: Needs a corrected invoice" in card  # Sam reads Russian

    await desk.say(OLGA, f"/transfer {vip.number} VIP")  # Boss, the only one in vip, is offline
    assert f"#{vip.number} went to group vip and waits in the queue." in desk.texts(OLGA)
    queued = await desk.store.threads.get(vip.id)
    assert queued.status is ThreadStatus.QUEUED and queued.group == "vip" and queued.operator_id is None

    await desk.online(OLGA)  # already online: nothing else changes
    await desk.say(BOSS, f"/transfer {invoice.number} nobody")
    assert last(desk, BOSS) == "“nobody” is not an operator or a group I know. Nothing changed."
    await desk.say(BOSS, f"/transfer {invoice.number}")
    assert last(desk, BOSS).startswith("Usage: /transfer 17 @operator|group [comment].")
    assert (await desk.store.threads.get(invoice.id)).operator_id == SAM


async def test_transfer_refusals_change_nothing(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("help me", "a-1")
    thread = await thread_of(desk, "help me")

    await desk.say(OLGA, f"/transfer {thread.number} @sam please take it")
    assert last(desk, OLGA) == (
        f"Sam is offline with 0/3 conversations and can't take #{thread.number}. Nothing changed."
    )
    await desk.say(OLGA, f"/transfer {thread.number} @olga")
    assert last(desk, OLGA) == f"#{thread.number} is already with Olga."
    await desk.online(SAM)
    await desk.say(SAM, f"/transfer {thread.number} @sam")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    unchanged = await desk.store.threads.get(thread.id)
    assert unchanged.operator_id == OLGA and unchanged.transfers == ()
    assert not any(text.startswith(f"#{thread.number} · ") for text in desk.texts(SAM))

    await desk.say(BOSS, f"/transfer {thread.number} Sam")  # supervisors transfer anyone's; a name works too
    assert last(desk, BOSS) == f"#{thread.number} is now with Sam."
    moved = await desk.store.threads.get(thread.id)
    assert moved.operator_id == SAM and moved.transfers[-1].by == BOSS
    assert f"↪️ Boss moved #{thread.number} to Sam." in desk.texts(OLGA)

    await desk.say(SAM, f"/close {thread.number}")
    await desk.say(SAM, f"/transfer {thread.number} @olga")
    assert last(desk, SAM) == f"#{thread.number} закрыт, его нельзя передать."


async def test_transfer_button_offers_online_operators_and_groups(desk: Desk) -> None:
    await desk.store.operators.update(BOSS, {"groups": ["vip"]})
    await desk.online(OLGA)
    await desk.visitor("transfer me", "a-1")
    await desk.online(SAM)
    thread = await thread_of(desk, "transfer me")

    await desk.press(OLGA, card_of(desk, OLGA, thread.number).message_id, f"transfer:{thread.number}")
    picker = desk.chat(OLGA)[-1]
    assert picker.text == f"Transfer #{thread.number} to:"
    labels = [b["text"] for row in picker.reply_markup["inline_keyboard"] for b in row]
    assert labels == ["Sam · 0/3", "👥 vip"]  # Olga owns it, Boss is offline
    assert buttons(picker) == [f"xfer:{thread.number}:o:{SAM}", f"xfer:{thread.number}:g:vip"]

    await desk.press(OLGA, picker.message_id, f"xfer:{thread.number}:o:{SAM}")
    result = desk.tg.edits(OLGA)[-1]
    assert result.text == f"#{thread.number} is now with Sam." and not buttons(result)  # the picker is spent
    assert (await desk.store.threads.get(thread.id)).operator_id == SAM
    assert card_of(desk, SAM, thread.number)

    await desk.press(OLGA, card_of(desk, OLGA, thread.number).message_id, f"transfer:{thread.number}")
    assert last(desk, OLGA) == f"#{thread.number} is not your conversation."
    assert (await desk.store.threads.get(thread.id)).operator_id == SAM


# -- /note, /block, /unblock ----------------------------------------------------------------------


async def test_notes_are_stored_on_the_contact_and_shown_on_later_cards(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("hello", "a-1")
    thread = await thread_of(desk, "hello")

    await desk.say(OLGA, "/note Prefers e-mail over calls")
    assert last(desk, OLGA) == f"Note saved on the card of Visitor (#{thread.number})."
    await desk.say(OLGA, f"/note #{thread.number} Ordered 3 boxes")
    contact = await desk.store.contacts.get(thread.contact_id)
    assert [(n.text, n.author_id, n.author_name) for n in contact.notes] == [
        ("Prefers e-mail over calls", OLGA, "Olga"),
        ("Ordered 3 boxes", OLGA, "Olga"),
    ]

    await desk.say(OLGA, "/note")
    assert last(desk, OLGA).startswith("Usage: /note text")
    await desk.say(SAM, f"/note {thread.number} not my customer")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    await desk.say(OLGA, "/close")
    await desk.say(OLGA, "/note no active conversation now")
    assert last(desk, OLGA) == "Which customer? You have no active conversation: use /note 17 text."
    assert len((await desk.store.contacts.get(thread.contact_id)).notes) == 2

    await ann.say("back again", "a-2")
    await settle(desk.app)
    card = card_of(desk, OLGA, (await thread_of(desk, "back again")).number)
    assert "📝 Prefers e-mail over calls (Olga," in card.text and "📝 Ordered 3 boxes (Olga," in card.text


async def test_block_stops_routing_and_unblock_restores_it(closing_desk: Desk) -> None:
    desk = closing_desk
    await desk.online(OLGA)
    spammer = await desk.visitor("buy cheap stuff", "s-1")
    await desk.online(SAM)
    thread = await thread_of(desk, "buy cheap stuff")

    await desk.say(SAM, f"/block {thread.number}")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    assert not (await desk.store.contacts.get(thread.contact_id)).blocked
    await desk.say(OLGA, f"/block {thread.number}")
    answer = desk.chat(OLGA)[-1]
    assert answer.text == f"Visitor (#{thread.number}) is blocked: their messages are kept but reach nobody."
    assert buttons(answer) == [f"unblock:{thread.number}"]
    assert (await desk.store.contacts.get(thread.contact_id)).blocked
    assert not (await desk.store.threads.get(thread.id)).open
    assert await desk.store.messages.collection.count_documents({"author": "system"}) == 0  # no closing message
    await quiet(spammer, "s-2")

    seen = {op: len(desk.chat(op)) for op in (OLGA, SAM, BOSS)}
    await spammer.say("more spam", "s-3")
    await settle(desk.app)
    stored = await desk.store.messages.collection.find_one({"text": "more spam"})
    assert stored["thread_id"] == thread.id
    assert not (await desk.store.threads.get(thread.id)).open
    assert {op: len(desk.chat(op)) for op in (OLGA, SAM, BOSS)} == seen

    await desk.press(OLGA, answer.message_id, f"unblock:{thread.number}")
    assert last(desk, OLGA) == f"Visitor (#{thread.number}) is unblocked: new messages reach operators again."
    assert not (await desk.store.contacts.get(thread.contact_id)).blocked
    await spammer.say("sorry, a real question", "s-4")
    await settle(desk.app)
    reopened = await thread_of(desk, "sorry, a real question")
    assert reopened.id != thread.id and reopened.operator_id == OLGA  # back to whoever had them last
    assert desk.texts(OLGA)[-1] == f"#{reopened.number} · sorry, a real question"


async def test_block_button_and_unblock_errors(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("troll", "t-1")
    thread = await thread_of(desk, "troll")
    await desk.say(OLGA, f"/unblock {thread.number}")
    assert last(desk, OLGA) == f"Visitor (#{thread.number}) is not blocked."

    await desk.press(OLGA, card_of(desk, OLGA, thread.number).message_id, f"block:{thread.number}")
    assert last(desk, OLGA) == f"Visitor (#{thread.number}) is blocked: their messages are kept but reach nobody."
    assert (await desk.store.contacts.get(thread.contact_id)).blocked
    await desk.say(OLGA, f"/block {thread.number}")
    assert last(desk, OLGA) == f"Visitor (#{thread.number}) is already blocked."
    await desk.say(SAM, f"/unblock {thread.number}")
    assert last(desk, SAM) == f"#{thread.number} — не ваш диалог."
    await desk.say(OLGA, "/unblock")
    assert last(desk, OLGA) == "Give a conversation number, e.g. /unblock 17."
    await desk.say(OLGA, f"/unblock {thread.number}")
    assert last(desk, OLGA) == f"Visitor (#{thread.number}) is unblocked: new messages reach operators again."
    assert not (await desk.store.contacts.get(thread.contact_id)).blocked


# -- /search --------------------------------------------------------------------------------------


async def test_search_finds_contacts_and_messages_the_operator_may_see(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("my parcel 1234 is late", "a-1")
    await ann.ws.send_json(
        {"type": "identify", "name": "Ann Lee", "email": "ann@example.com", "phone": "+1 415 555 2671"}
    )
    await desk.online(SAM)
    bob = await desk.visitor("the parcel never arrived", "b-1")
    await bob.ws.send_json({"type": "identify", "name": "Bob Stone", "email": "bob@stone.example"})
    await ann.say("sync", "a-2")
    await bob.say("sync", "b-2")
    await settle(desk.app)
    ann_thread = await thread_of(desk, "my parcel 1234 is late")
    bob_thread = await thread_of(desk, "the parcel never arrived")
    assert (ann_thread.operator_id, bob_thread.operator_id) == (OLGA, SAM)

    ann_line = f"👤 Ann Lee · +1 415-555-2671 · ann@example.com · #{ann_thread.number}"
    for query in ("ann lee", "(415) 555-2671", "ANN@EXAMPLE.COM", "Lee"):
        await desk.say(OLGA, f"/search {query}")
        assert ann_line in last(desk, OLGA).split("\n"), query
    await desk.say(OLGA, "/search PARCEL")
    found = last(desk, OLGA)
    assert f"#{ann_thread.number} · my parcel 1234 is late" in found and "never arrived" not in found
    await desk.say(OLGA, "/search bob")
    assert last(desk, OLGA) == "Nothing found for “bob”."
    await desk.say(OLGA, "/search (41")  # regex characters are taken literally
    assert last(desk, OLGA) == "Nothing found for “(41”."
    await desk.say(OLGA, "/search a")
    assert last(desk, OLGA) == "Usage: /search text (at least 2 characters)."

    await desk.say(BOSS, "/search parcel")
    assert "my parcel 1234 is late" in last(desk, BOSS) and "the parcel never arrived" in last(desk, BOSS)
    await desk.say(BOSS, "/search stone.example")
    assert f"👤 Bob Stone · bob@stone.example · #{bob_thread.number}" in last(desk, BOSS)

    await desk.say(SAM, "/search ann")
    assert last(desk, SAM) == "По запросу «ann» ничего не найдено."
    await desk.say(OLGA, f"/transfer {ann_thread.number} @sam")
    await desk.say(SAM, "/search ann")
    assert ann_line in last(desk, SAM)
    await desk.say(OLGA, "/search ann")  # she handled Ann before the transfer
    assert ann_line in last(desk, OLGA)


# -- languages and help ---------------------------------------------------------------------------


async def test_unknown_commands_get_help(desk: Desk) -> None:
    await desk.say(OLGA, "/frobnicate now")
    answer = last(desk, OLGA)
    assert answer.startswith("Unknown command /frobnicate.") and "/chats — Your conversations" in answer
    await desk.say(SAM, "/frobnicate")
    assert last(desk, SAM).startswith("Неизвестная команда /frobnicate.")


def test_every_command_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    assert commands.TEXTS["en"].keys() == commands.TEXTS["ru"].keys()
    for key, english in commands.TEXTS["en"].items():
        assert fields(english) == fields(commands.TEXTS["ru"][key]), key
        assert not fields(english) & {"lang", "key"}, key  # t(lang, key, **values) takes those itself
