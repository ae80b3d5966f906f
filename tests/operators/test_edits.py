"""An operator's edit of a sent reply changes the customer's copy, or the operator is told why it cannot."""

from __future__ import annotations

from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.helpers import Widget, settle
from tests.operators.conftest import (
    ANN_TG,
    BOB_WA,
    CUSTOMER_BOT,
    OLGA,
    OPERATOR_BOT,
    SUPERVISORS,
    Desk,
    OpenDesk,
    boss_answers_in_the_topic,
    from_telegram,
    from_whatsapp,
    open_forum,
)


async def edit(desk: Desk, chat_id: int, message_id: int, **change: str) -> None:
    """The operator edits a message of theirs in the operator bot."""
    assert await desk.send(desk.tg.edited_update(OPERATOR_BOT, chat_id, message_id, **change)) == 200


async def test_an_edited_reply_edits_the_telegram_customers_copy(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "How much is shipping?"))
    reply = await desk.say(OLGA, "Shipping is 100 EUR.")
    [copy] = desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)

    await edit(desk, OLGA, reply, text="Shipping is 10 EUR.")
    [edited] = desk.tg.edits(chat_id=ANN_TG, token=CUSTOMER_BOT)
    assert (edited.method, edited.message_id, edited.text) == (
        "editMessageText",
        copy.message_id,
        "Shipping is 10 EUR.",
    )
    stored = await desk.store.messages.collection.find_one({"text": "Shipping is 10 EUR."})
    assert stored["edits"] == ["Shipping is 100 EUR."]
    assert len(desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)) == 1  # changed in place, nothing new

    # The same text again (Telegram sends an update for a formatting-only edit too) changes nothing.
    await edit(desk, OLGA, reply, text="Shipping is 10 EUR.")
    assert len(desk.tg.edits(chat_id=ANN_TG, token=CUSTOMER_BOT)) == 1
    assert not [t for t in desk.texts(OLGA) if t.startswith("✏️")]


async def test_an_edited_caption_edits_the_caption_of_the_customers_file(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "The invoice, please"))
    update = desk.tg.document_update(OPERATOR_BOT, OLGA, b"%PDF-1.4 invoice", file_name="invoice.pdf", caption="Invoce")
    assert await desk.send(update) == 200
    [copy] = desk.tg.sent(chat_id=ANN_TG, method="sendDocument", token=CUSTOMER_BOT)

    await edit(desk, OLGA, update["message"]["message_id"], caption="Invoice")
    [edited] = desk.tg.edits(chat_id=ANN_TG, token=CUSTOMER_BOT)
    assert (edited.method, edited.message_id, edited.caption) == ("editMessageCaption", copy.message_id, "Invoice")


async def test_an_edited_reply_reaches_the_widget_and_its_history(desk: Desk) -> None:
    await desk.online(OLGA)
    visitor = await desk.visitor("Is it in stock?")
    reply = await desk.say(OLGA, "Yes, 3 left.")
    shown = await visitor.expect("message")
    assert shown["text"] == "Yes, 3 left."

    await edit(desk, OLGA, reply, text="Yes, 2 left.")
    assert await visitor.expect("edit") == {"type": "edit", "id": shown["id"], "text": "Yes, 2 left."}

    # A tab opened later finds the new text.
    later = await Widget.open(desk.client)
    welcome = await later.hello(token=visitor.token)
    assert [m["text"] for m in welcome["history"]] == ["Is it in stock?", "Yes, 2 left."]


async def test_whatsapp_cannot_edit_and_the_operator_is_told(everywhere: Desk, twilio: TwilioEmulator) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Price?", profile_name="Bob"))
    reply = await desk.say(OLGA, "It is 100 EUR.")
    await edit(desk, OLGA, reply, text="It is 10 EUR.")

    assert [m.body for m in twilio.messages] == ["It is 100 EUR."]
    told = desk.chat(OLGA)[-1]
    assert told.reply_to_message_id == reply
    assert "WhatsApp cannot change a message once it is sent" in told.text
    # The record keeps what the customer has.
    assert await desk.store.messages.collection.find_one({"text": "It is 100 EUR."}) is not None


async def test_editing_anything_but_a_sent_reply_changes_nothing(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hello"))
    command = await desk.say(OLGA, "/chats")
    before = len(desk.chat(OLGA))
    await edit(desk, OLGA, command, text="/chats please")
    await settle(desk.app)
    assert len(desk.chat(OLGA)) == before
    assert desk.tg.edits(chat_id=ANN_TG, token=CUSTOMER_BOT) == []


async def test_a_supervisors_edit_in_the_forum_topic_reaches_the_customer(
    tg: TelegramEmulator, open_desk: OpenDesk
) -> None:
    desk = await open_forum(tg, open_desk)
    visitor, answer, shown = await boss_answers_in_the_topic(desk, "Yes, 100 EUR")
    await edit(desk, SUPERVISORS, answer, text="Yes, 10 EUR")
    assert await visitor.expect("edit") == {"type": "edit", "id": shown["id"], "text": "Yes, 10 EUR"}


async def test_a_reply_telegram_got_in_parts_cannot_be_edited_and_the_operator_is_told(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Your terms?"))
    await desk.say(OLGA, "/canned add terms " + "Clause. " * 500)  # 4,000 characters
    reply = await desk.say(OLGA, "Here: !terms !terms")  # expanded, too long for one Telegram message
    assert len(desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)) == 2

    await edit(desk, OLGA, reply, text="Our terms: !terms !terms")
    assert desk.tg.edits(chat_id=ANN_TG, token=CUSTOMER_BOT) == []
    told = desk.chat(OLGA)[-1]
    assert told.reply_to_message_id == reply
    assert told.text.startswith("✏️ #") and "cannot be changed for the customer" in told.text
    assert "several parts" in told.text
