"""Context is kept: what a message answers is shown on the other side, as a reply or as a quoted line."""

from __future__ import annotations

import aiohttp

from tests.emulators.twilio import TwilioEmulator
from tests.helpers import settle
from tests.operators.conftest import ANN_TG, BOB_WA, CUSTOMER_BOT, OLGA, SAM, Desk, from_telegram, from_whatsapp


def copy_of(desk: Desk, chat_id: int, text: str):
    return next(m for m in desk.chat(chat_id) if (m.text or "").endswith(text))


async def test_a_customer_reply_is_shown_as_a_reply_to_the_operators_copy(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    question = desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "My order is 123")
    await from_telegram(desk, question)
    answer = await desk.say(OLGA, "Which colour did you pick?")
    [answer_copy] = desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)

    # To the operator's reply: shown as a reply to what the operator wrote.
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Blue", reply_to=answer_copy.message_id))
    assert copy_of(desk, OLGA, "Blue").reply_to_message_id == answer
    # To their own earlier message: a reply to the bot's copy of it.
    await from_telegram(
        desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "(that order)", reply_to=question["message"]["message_id"])
    )
    assert copy_of(desk, OLGA, "(that order)").reply_to_message_id == copy_of(desk, OLGA, "My order is 123").message_id
    assert "↩️" not in copy_of(desk, OLGA, "(that order)").text


async def test_without_a_copy_to_reply_to_the_operator_sees_what_was_quoted(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    question = desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "My order is 123")
    await from_telegram(desk, question)
    await desk.say(OLGA, "/close")
    await desk.say(OLGA, "/offline")
    await desk.online(SAM)

    # A new conversation, with Sam, who never saw the quoted message.
    await from_telegram(
        desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Still waiting", reply_to=question["message"]["message_id"])
    )
    shown = copy_of(desk, SAM, "Still waiting")
    assert shown.reply_to_message_id is None
    assert shown.text.endswith("↩️ «My order is 123»\nStill waiting")

    # A message the gateway never stored (the bot's broadcast from before): its text, as Telegram quoted it.
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{desk.tg.base_url}/bot{CUSTOMER_BOT}/sendMessage",
            json={"chat_id": ANN_TG, "text": "Summer sale: -20% on everything"},
        )
        broadcast = (await answer.json())["result"]["message_id"]
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Even shoes?", reply_to=broadcast))
    assert copy_of(desk, SAM, "Even shoes?").text.endswith("↩️ «Summer sale: -20% on everything»\nEven shoes?")


async def test_an_operator_reply_to_a_customer_message_is_a_reply_on_the_customers_side(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    first = desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Do you ship to Norway?")
    await from_telegram(desk, first)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "And to Iceland?"))
    await desk.say(OLGA, "Yes, to Norway.", reply_to=copy_of(desk, OLGA, "Do you ship to Norway?").message_id)
    [sent] = desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)
    assert sent.reply_to_message_id == first["message"]["message_id"]


async def test_an_operator_reply_to_a_visitor_message_names_it_in_the_widget(desk: Desk) -> None:
    await desk.online(OLGA)
    visitor = await desk.visitor("Is the blue one in stock?", "q-1")
    await visitor.say("And the red one?", "q-2")
    await settle(desk.app)
    stored = await desk.store.messages.collection.find_one({"text": "Is the blue one in stock?"})
    await desk.say(OLGA, "Blue: yes.", reply_to=copy_of(desk, OLGA, "Is the blue one in stock?").message_id)

    frame = await visitor.expect("message")
    while frame["author"]["type"] != "operator":
        frame = await visitor.expect("message")
    assert (frame["text"], frame["reply_to"]) == ("Blue: yes.", str(stored["_id"]))


async def test_a_whatsapp_reply_is_shown_as_a_reply_too(everywhere: Desk, twilio: TwilioEmulator) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Do you deliver on Sundays?", profile_name="Bob"))
    answer = await desk.say(OLGA, "Only in Berlin.")
    [sent] = twilio.messages
    await from_whatsapp(desk, twilio, twilio.inbound_reply(BOB_WA, "I live there!", sent.sid, profile_name="Bob"))
    assert copy_of(desk, OLGA, "I live there!").reply_to_message_id == answer
