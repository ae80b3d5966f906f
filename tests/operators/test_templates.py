"""/template N: the approved WhatsApp templates, any time, inside the 24-hour window and after it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.model import utcnow
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.operators.conftest import (
    ANN_TG,
    BOB_WA,
    CUSTOMER_BOT,
    OLGA,
    Desk,
    OpenDesk,
    from_telegram,
    from_whatsapp,
    open_everywhere,
)

FOLLOW_UP = "HX" + "b5" * 16


@pytest.fixture
async def templated(open_desk: OpenDesk, tg: TelegramEmulator, twilio: TwilioEmulator) -> Desk:
    templates = [{"name": "follow_up", "content_sid": FOLLOW_UP, "variables": ["name"]}]
    return await open_everywhere(open_desk, tg, twilio, whatsapp={"templates": templates})


async def test_template_is_sent_inside_and_outside_the_window(templated: Desk, twilio: TwilioEmulator) -> None:
    desk = templated
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Any news on my order?", profile_name="Bob"))
    thread = (await desk.store.threads.collection.find({}).to_list())[0]
    number = thread["number"]

    # The window closed while the conversation waited: the card says so.
    await desk.store.contacts.update_identity(
        thread["identity"], utcnow(), last_inbound_at=utcnow() - timedelta(hours=25)
    )
    await desk.online(OLGA)
    card = next(text for text in desk.texts(OLGA) if text.startswith(f"#{number}"))
    assert f"24-hour window has closed: send a template (/template {number})" in card

    await desk.say(OLGA, f"/template {number}")
    listing = desk.chat(OLGA)[-1]
    assert "The 24-hour window has closed" in listing.text
    [[button]] = listing.reply_markup["inline_keyboard"]
    assert button["callback_data"] == f"tpl:{number}:0"
    await desk.press(OLGA, listing.message_id, button["callback_data"])
    sent = twilio.messages[-1]
    assert sent.content_sid == FOLLOW_UP and sent.to == "whatsapp:" + BOB_WA

    # Inside the window (the customer wrote again), the templates are still offered.
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Thanks, and?", profile_name="Bob"))
    await desk.say(OLGA, f"/template {number}")
    listing = desk.chat(OLGA)[-1]
    assert "the 24-hour window is open" in listing.text
    await desk.press(OLGA, listing.message_id, f"tpl:{number}:0")
    assert [m.content_sid for m in twilio.messages].count(FOLLOW_UP) == 2


async def test_template_refuses_other_channels_and_unknown_threads(templated: Desk) -> None:
    desk = templated
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi"))
    await desk.say(OLGA, "/template 1")
    assert "templates are for WhatsApp only" in desk.texts(OLGA)[-1]
    await desk.say(OLGA, "/template 99")
    assert "#99" in desk.texts(OLGA)[-1]
    await desk.say(OLGA, "/help")
    assert "/template — WhatsApp templates for a conversation" in desk.texts(OLGA)[-1]
