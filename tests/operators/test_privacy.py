"""/export and /forget in the operator bot: a customer's data as a file, and erased after a confirmation, with
what the bot showed of them deleted from Telegram as far as Telegram allows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gateway.model import Thread, utcnow
from tests.emulators.telegram import SentMessage, TelegramEmulator
from tests.helpers import settle
from tests.operators.conftest import BOSS, OLGA, OPERATOR_BOT, SAM, SUPERVISORS, Desk, OpenDesk, open_forum


async def conversation(desk: Desk, text: str = "Hello, my parcel is late") -> Thread:
    """A widget visitor writes and Olga, online, answers."""
    await desk.online(OLGA)
    widget = await desk.visitor(text)
    await widget.close()
    await desk.say(OLGA, "We are looking into it")
    message = await desk.store.messages.collection.find_one({"text": text})
    thread = await desk.store.threads.get(message["thread_id"])
    assert thread is not None and thread.operator_id == OLGA
    return thread


def buttons(message: SentMessage) -> list[tuple[str, str]]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


async def test_export_sends_a_supervisor_everything_stored_about_the_customer_as_a_file(desk: Desk) -> None:
    thread = await conversation(desk)
    await desk.say(BOSS, f"/export #{thread.number}")

    sent = desk.chat(BOSS)[-1]
    assert sent.method == "sendDocument" and sent.file is not None
    assert sent.file.filename == f"customer-{thread.contact_id}.json"
    assert sent.caption is not None and sent.caption.startswith(f"#{thread.number}: everything stored")
    export = json.loads(sent.file.data)
    assert export["contact"]["id"] == str(thread.contact_id)
    assert export["contact"]["visitor"]["url"] == "https://shop.example/pricing"
    texts = [m["text"] for t in export["threads"] for m in t["messages"]]
    assert texts == ["Hello, my parcel is late", "We are looking into it"]
    assert export["threads"][0]["messages"][1]["status"] in ("sent", "delivered")


async def test_export_and_forget_are_for_supervisors_and_say_what_is_wrong(desk: Desk) -> None:
    thread = await conversation(desk)
    for command in (f"/export {thread.number}", f"/forget {thread.number}"):
        await desk.say(OLGA, command)
        assert desk.texts(OLGA)[-1] == f"{command.split()[0]} is for supervisors only."
    await desk.say(SAM, f"/forget {thread.number}")
    assert desk.texts(SAM)[-1] == "/forget — команда только для супервизоров."
    for command, answer in (
        ("/export", "Give a conversation number, e.g. /export 17."),
        ("/forget 999", "There is no conversation #999."),
    ):
        await desk.say(BOSS, command)
        assert desk.texts(BOSS)[-1] == answer
    # A button Olga could only have forged erases nothing.
    await desk.say(BOSS, f"/forget {thread.number}")
    erase = buttons(desk.chat(BOSS)[-1])[0][1]
    forged = desk.tg.callback_update(OPERATOR_BOT, OLGA, desk.chat(BOSS)[-1].message_id, erase, chat_id=BOSS)
    assert await desk.send(forged) == 200
    assert desk.tg.callback_answers[-1].show_alert
    assert await desk.store.contacts.get(thread.contact_id) is not None


async def test_forget_asks_first_then_erases_and_deletes_what_the_bot_showed(desk: Desk) -> None:
    thread = await conversation(desk)
    shown = [m.message_id for m in desk.chat(OLGA) if m.text and f"#{thread.number}" in m.text]
    assert shown  # the card and the customer's message, in Olga's chat

    await desk.say(BOSS, f"/forget {thread.number}")
    question = desk.chat(BOSS)[-1]
    assert question.text is not None and question.text.startswith(
        f"Erase everything stored about the customer of #{thread.number}?"
    )
    assert "1 conversations with 2 messages" in question.text
    (erase_text, erase), (cancel_text, cancel) = buttons(question)
    assert (erase_text, cancel_text) == ("🗑 Erase", "Cancel")
    assert await desk.store.contacts.get(thread.contact_id) is not None  # nothing happens before the answer

    assert await desk.press(BOSS, question.message_id, cancel) == 200
    assert desk.tg.message(OPERATOR_BOT, BOSS, question.message_id)["text"] == "Cancelled: nothing was erased."
    assert await desk.store.contacts.get(thread.contact_id) is not None

    await desk.say(BOSS, f"/forget {thread.number}")
    second_thoughts = desk.chat(BOSS)[-1]  # asked twice: answered below, after the first answer
    await desk.say(BOSS, f"/forget {thread.number}")
    question = desk.chat(BOSS)[-1]
    assert await desk.press(BOSS, question.message_id, buttons(question)[0][1]) == 200
    await settle(desk.app)
    answer = desk.tg.message(OPERATOR_BOT, BOSS, question.message_id)
    lines = answer["text"].split("\n")
    assert lines[0] == (
        f"🗑 Erased the customer of #{thread.number}: 1 cards and 2 messages deleted, 1 conversations kept as "
        "timings only."
    )
    assert lines[1:] == [
        "Not deleted, because the gateway cannot reach it:",
        "• the visitor token in the customer's browser (it opens no history any more)",
        "• the database's change history and backups, until they roll over",
    ]
    assert "reply_markup" not in answer
    assert await desk.store.contacts.get(thread.contact_id) is None
    erased = await desk.store.threads.get(thread.id)
    assert erased is not None and erased.erased_at is not None and not erased.open
    # Olga's copies are gone from her chat; she is told why the conversation went, and her slot is free.
    assert set(shown) <= {d.message_id for d in desk.tg.deletions if d.chat_id == OLGA}
    assert desk.texts(OLGA)[-1] == f"#{thread.number} was closed: the customer's data was erased at their request."
    assert (await desk.store.operators.get(OLGA)).chats == ()
    audit = await desk.store.erasures.collection.find_one()
    assert (audit["via"], audit["by_operator"]) == ("operator_bot", BOSS)

    # The other question's Erase: the same erasure, nothing more.
    assert await desk.press(BOSS, second_thoughts.message_id, erase) == 200
    again = desk.tg.message(OPERATOR_BOT, BOSS, second_thoughts.message_id)
    assert again["text"] == f"The customer of #{thread.number} was erased already. Nothing changed."
    for command in ("/forget", "/export"):
        await desk.say(BOSS, f"{command} {thread.number}")
        gone = f"Nothing is stored about the customer of #{thread.number} any more: they were erased."
        assert desk.texts(BOSS)[-1] == gone


@pytest.fixture
async def forum(tg: TelegramEmulator, open_desk: OpenDesk) -> Desk:
    return await open_forum(tg, open_desk)


async def test_the_forum_topic_goes_and_what_telegram_keeps_is_listed(forum: Desk) -> None:
    desk = forum
    first = await conversation(desk)
    topic = (await desk.store.threads.get(first.id)).topic_id
    assert topic is not None
    await desk.say(BOSS, f"/forget {first.number}")
    question = desk.chat(BOSS)[-1]
    await desk.press(BOSS, question.message_id, buttons(question)[0][1])
    assert desk.tg.topics(SUPERVISORS)[topic].deleted

    # Telegram refuses the next topic, and Olga's copies are older than Telegram lets a bot delete.
    second = await conversation(desk, "Another question")
    await desk.store.relay.collection.update_many(
        {"chat_id": OLGA, "thread_id": second.id}, {"$set": {"at": utcnow() - timedelta(hours=49)}}
    )
    old = await desk.store.relay.collection.count_documents({"chat_id": OLGA, "thread_id": second.id})
    desk.tg.fail(SUPERVISORS, 400, "Bad Request: not enough rights to delete the topic", method="deleteForumTopic")
    deleted = len(desk.tg.deletions)
    await desk.say(BOSS, f"/forget {second.number}")
    question = desk.chat(BOSS)[-1]
    await desk.press(BOSS, question.message_id, buttons(question)[0][1])
    text = desk.tg.message(OPERATOR_BOT, BOSS, question.message_id)["text"]
    assert f"• {old} copies in operators' chats that Telegram no longer lets the bot delete" in text
    assert "• 1 topics of the supervisors' forum that Telegram did not let the bot delete" in text
    assert not any(d.chat_id == OLGA for d in desk.tg.deletions[deleted:])
    assert await desk.store.relay.collection.count_documents({"thread_id": second.id, "chat_id": OLGA}) <= 1
