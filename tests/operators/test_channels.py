"""Operators and customers on every channel at once: Telegram and WhatsApp customers through the real
adapters and their emulators, operators in the operator bot."""

from __future__ import annotations

from aiohttp import web

from tests.emulators.twilio import SAMPLE_JPEG, TwilioEmulator
from tests.operators.conftest import (
    ANN_TG,
    ANN_WA,
    BOB_WA,
    CUSTOMER_BOT,
    OLGA,
    OPERATOR_BOT,
    SAM,
    SENDER,
    Desk,
    from_telegram,
    from_whatsapp,
)


def copy_of(desk: Desk, operator_id: int, text: str):
    return next(m for m in desk.chat(operator_id) if (m.text or m.caption or "").endswith(text))


async def test_replies_reach_the_right_customer_on_telegram_and_whatsapp(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi from Telegram"))
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Hi from WhatsApp", profile_name="Bob"))

    # By Telegram reply, to each customer on their own channel.
    await desk.say(OLGA, "Hello Ann!", reply_to=copy_of(desk, OLGA, "Hi from Telegram").message_id)
    await desk.say(OLGA, "Hello Bob!", reply_to=copy_of(desk, OLGA, "Hi from WhatsApp").message_id)
    assert [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)] == ["Hello Ann!"]
    [to_bob] = twilio.messages
    assert (to_bob.to, to_bob.from_, to_bob.body) == ("whatsapp:" + BOB_WA, SENDER, "Hello Bob!")

    # By active conversation: /chat selects Bob's, and a plain message goes there only.
    bob_message = await desk.store.messages.collection.find_one({"text": "Hi from WhatsApp"})
    bob_thread = await desk.store.threads.get(bob_message["thread_id"])
    await desk.say(OLGA, f"/chat {bob_thread.number}")
    await desk.say(OLGA, "Your parcel left today.")
    assert [m.body for m in twilio.messages] == ["Hello Bob!", "Your parcel left today."]
    assert len(desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)) == 1


async def test_customer_media_reaches_the_operator_as_media_and_edits_as_edits(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA)
    photo = b"\xff\xd8\xff\xe0" + b"parcel-photo" * 50
    await from_telegram(desk, desk.tg.photo_update(CUSTOMER_BOT, ANN_TG, photo, caption="the box arrived broken"))
    await from_telegram(desk, desk.tg.voice_update(CUSTOMER_BOT, ANN_TG, b"OggS-voice-bytes"))
    await from_telegram(desk, desk.tg.location_update(CUSTOMER_BOT, ANN_TG, 52.52, 13.405))
    text = desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "I ordred two")
    await from_telegram(desk, text)
    await from_telegram(
        desk, desk.tg.edited_update(CUSTOMER_BOT, ANN_TG, text["message"]["message_id"], text="I ordered two")
    )
    await from_whatsapp(desk, twilio, twilio.inbound_image(BOB_WA, SAMPLE_JPEG, caption="receipt"))

    [photo_copy, receipt] = desk.tg.sent(chat_id=OLGA, method="sendPhoto", token=OPERATOR_BOT)
    assert photo_copy.file.data == photo and photo_copy.caption.endswith("the box arrived broken")
    assert receipt.file.data == SAMPLE_JPEG and receipt.caption.endswith("receipt")
    [voice] = desk.tg.sent(chat_id=OLGA, method="sendVoice", token=OPERATOR_BOT)
    assert voice.file.data == b"OggS-voice-bytes"
    [where] = desk.tg.sent(chat_id=OLGA, method="sendLocation", token=OPERATOR_BOT)
    assert (where.message["location"]["latitude"], where.message["location"]["longitude"]) == (52.52, 13.405)
    edited = next(m for m in desk.chat(OLGA) if m.text and "edited: I ordered two" in m.text)
    assert edited.reply_to_message_id == copy_of(desk, OLGA, "I ordred two").message_id


async def test_operator_files_reach_telegram_customers_as_uploads(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Can I see the invoice?"))
    invoice = b"%PDF-1.4 invoice"
    update = desk.tg.document_update(
        OPERATOR_BOT, OLGA, invoice, file_name="invoice.pdf", mime_type="application/pdf", caption="Here you go"
    )
    assert await desk.send(update) == 200
    [sent] = desk.tg.sent(chat_id=ANN_TG, method="sendDocument", token=CUSTOMER_BOT)
    assert sent.file.data == invoice and sent.caption == "Here you go"


async def test_contact_share_and_whatsapp_number_are_offered_as_one_person(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA, SAM)
    await from_whatsapp(desk, twilio, twilio.inbound_text(ANN_WA, "Where is my order?", profile_name="Ann"))
    await from_telegram(
        desk, desk.tg.contact_update(CUSTOMER_BOT, ANN_TG, ANN_WA.lstrip("+"), first_name="Ann", last_name="Lee")
    )
    duplicates = await desk.store.duplicates.pending()
    assert len(duplicates) == 1 and duplicates[0].reason.startswith(f"same phone {ANN_WA} (verified on both)")
    offers = [m for op in (OLGA, SAM) for m in desk.chat(op) if m.reply_markup and "dup:n:" in str(m.reply_markup)]
    assert len(offers) == 2  # each operator handling one of the conversations

    merge = next(
        b["callback_data"]
        for row in offers[0].reply_markup["inline_keyboard"]
        for b in row
        if b["callback_data"].endswith(":0")
    )
    await desk.press(offers[0].chat_id, offers[0].message_id, merge)
    whatsapp_card = await desk.store.contacts.by_identity(f"whatsapp:{SENDER[9:]}:{ANN_WA}")
    assert {i.channel for i in whatsapp_card.identities} == {"whatsapp", "telegram"}
    assert whatsapp_card.phones == (ANN_WA,)

    # The next message from either channel lands in the kept conversation.
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "any news?"))
    stored = await desk.store.messages.collection.find_one({"text": "any news?"})
    kept = await desk.store.threads.open_for(whatsapp_card.id)
    assert stored["thread_id"] == kept.id and stored["contact_id"] == whatsapp_card.id


async def test_a_whatsapp_contact_card_is_read_when_shown_and_remembered(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA)
    params = twilio.inbound_contact(BOB_WA, "Carol Jones", ["+1 (415) 555-2671"])
    await from_whatsapp(desk, twilio, params)
    shown = [m for m in desk.chat(OLGA) if "Carol Jones" in (m.text or m.caption or "")]
    assert len(shown) == 1 and "+14155552671" in (shown[0].text or shown[0].caption or "")
    stored = await desk.store.messages.by_channel_id("whatsapp", SENDER[9:], params["MessageSid"])
    assert stored.content.shared_contact.name == "Carol Jones"
    # Read with the account's credentials, from Twilio's own origin, once.
    fetches = [r for r in twilio.requests if "/Media/" in r.path]
    assert [(r.auth, r.response_status) for r in fetches] == [((twilio.account_sid, twilio.auth_token), 200)]


async def test_a_file_outside_twilio_is_not_fetched_and_the_operator_is_told(
    everywhere: Desk, twilio: TwilioEmulator, aiohttp_server
) -> None:
    desk = everywhere
    hits = []

    async def canary(request):
        hits.append(request.path)
        return web.Response(body=b"secret")

    app = web.Application()
    app.router.add_get("/{tail:.*}", canary)
    server = await aiohttp_server(app)
    await desk.online(OLGA)
    params = twilio.inbound_text(BOB_WA, "see attached", profile_name="Bob")
    params |= {"NumMedia": "1", "MediaUrl0": str(server.make_url("/internal/admin")), "MediaContentType0": "image/png"}
    await from_whatsapp(desk, twilio, params)
    assert hits == []  # the canary saw no request, in the webhook or when the file was shown
    [shown] = [m for m in desk.chat(OLGA) if "see attached" in (m.text or m.caption or "")]
    assert "could not be fetched" in shown.text and "fetched from Twilio only" in shown.text
