"""The satisfaction survey through the real adapters: a Telegram press, a numbered WhatsApp answer and a widget
rating frame, each stored on the thread it rates, returned by the API, shown to the operator and in /stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.model import Thread, utcnow
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.helpers import AUTH, settle
from tests.operators.conftest import (
    ANN_TG,
    BOB_WA,
    BOSS,
    CUSTOMER_BOT,
    OLGA,
    SENDER,
    Desk,
    OpenDesk,
    from_telegram,
    from_whatsapp,
    open_everywhere,
)


@pytest.fixture
async def surveyed(open_desk: OpenDesk, tg: TelegramEmulator, twilio: TwilioEmulator) -> Desk:
    """The desk with CSAT on, a Telegram customer bot and a WhatsApp sender."""
    return await open_everywhere(open_desk, tg, twilio, csat={"enabled": True})


async def only_thread(desk: Desk) -> Thread:
    [doc] = await desk.store.threads.collection.find({}).to_list()
    return await desk.store.threads.get(doc["_id"])


async def api_thread(desk: Desk, number: int) -> dict[str, Any]:
    response = await desk.client.get(f"/api/v1/threads/{number}", headers=AUTH)
    assert response.status == 200
    return await response.json()


async def test_a_telegram_press_rates_the_thread_it_was_asked_about(surveyed: Desk) -> None:
    desk = surveyed
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Where is my parcel?"))
    await desk.say(OLGA, "It left today.")
    first = await only_thread(desk)
    await desk.say(OLGA, f"/close {first.number}")

    question = desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)[-1]
    [row] = question.reply_markup["inline_keyboard"]
    assert [b["text"] for b in row] == ["1", "2", "3", "4", "5"]  # one row, left to right
    assert [b["callback_data"] for b in row] == [f"csat:{first.number}:{s}" for s in range(1, 6)]

    # She writes again before rating: a new conversation opens; the press still rates the first one.
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "One more thing"))
    press = desk.tg.callback_update(CUSTOMER_BOT, ANN_TG, question.message_id, f"csat:{first.number}:4")
    await from_telegram(desk, press)
    rated = await desk.store.threads.get(first.id)
    assert rated.csat is not None and rated.csat.score == 4 and rated.csat.comment is None
    second = await desk.store.threads.open_for(first.contact_id)
    assert second is not None and second.id != first.id and second.csat is None

    # Pressing again, the same button or another, counts nothing twice and changes nothing.
    await from_telegram(
        desk, desk.tg.callback_update(CUSTOMER_BOT, ANN_TG, question.message_id, f"csat:{first.number}:4")
    )
    await from_telegram(
        desk, desk.tg.callback_update(CUSTOMER_BOT, ANN_TG, question.message_id, f"csat:{first.number}:1")
    )
    assert (await desk.store.threads.get(first.id)).csat == rated.csat

    # Then the comment: a reply to the message that asked for it.
    prompt = desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)[-1]
    assert "reply to this message" in (prompt.text or "").lower()
    assert prompt.params["reply_markup"]["force_reply"] is True
    reply = desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Quick and kind", reply_to=prompt.message_id)
    await from_telegram(desk, reply)
    assert (await desk.store.threads.get(first.id)).csat.comment == "Quick and kind"
    assert desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)[-1].text == "Thank you for your feedback!"
    assert (await desk.store.threads.get(second.id)).unread == 1  # the comment did not land in the new thread

    body = await api_thread(desk, first.number)
    assert body["csat"]["score"] == 4 and body["csat"]["comment"] == "Quick and kind"
    assert (await api_thread(desk, second.number))["csat"] is None
    texts = desk.texts(OLGA)
    assert any(f"#{first.number} was rated ★★★★☆ (4/5)" in text for text in texts)
    assert any("Quick and kind" in text for text in texts)

    await desk.say(BOSS, "/stats")
    report = "\n".join(desk.texts(BOSS))
    assert "Satisfaction: 1 ratings, average 4.0, 100% rated 4-5" in report
    assert "Olga: 1 ratings, average 4.0" in report


async def test_a_numbered_whatsapp_answer_rates_the_closed_thread(surveyed: Desk, twilio: TwilioEmulator) -> None:
    desk = surveyed
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Do you ship to Spain?", profile_name="Bob"))
    await desk.say(OLGA, "Yes, we do.")
    thread = await only_thread(desk)
    await desk.say(OLGA, "/close")
    question = twilio.messages[-1].body
    assert question.startswith("How would you rate our help?") and "number from 1 to 5" in question

    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "2 - too slow", profile_name="Bob"))
    rated = await desk.store.threads.get(thread.id)
    assert rated.csat.score == 2 and rated.csat.comment == "too slow" and not rated.open
    assert await desk.store.threads.count_for(thread.contact_id) == 1  # the answer opened no conversation
    assert twilio.messages[-1].body == "Thank you for your feedback!"
    assert (await api_thread(desk, thread.number))["csat"]["score"] == 2

    # A number after the rating is an ordinary message: a new conversation, the rating unchanged.
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "5", profile_name="Bob"))
    assert await desk.store.threads.count_for(thread.contact_id) == 2
    assert (await desk.store.threads.get(thread.id)).csat == rated.csat

    await desk.say(BOSS, "/stats")
    assert "Satisfaction: 1 ratings, average 2.0, 0% rated 4-5" in "\n".join(desk.texts(BOSS))


async def test_no_survey_for_a_conversation_nobody_answered(surveyed: Desk, twilio: TwilioEmulator) -> None:
    desk = surveyed
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "hello?", profile_name="Bob"))
    await desk.say(OLGA, "/close")
    assert twilio.messages == []
    # And a bare number then is an ordinary message.
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "3", profile_name="Bob"))
    thread = await desk.store.threads.by_number(1)
    assert thread.csat is None and await desk.store.threads.count_for(thread.contact_id) == 2


async def test_a_widget_rating_frame_rates_its_thread(surveyed: Desk) -> None:
    desk = surveyed
    await desk.online(OLGA)
    widget = await desk.visitor("Is the shop open on Sunday?")
    await desk.say(OLGA, "Yes, 10 to 4.")
    await widget.expect("message")
    thread = await only_thread(desk)
    await desk.say(OLGA, "/close")
    request = await widget.expect("rating_request")
    assert request["thread"] == thread.number and request["text"].startswith("How would you rate")

    for bad, code in (
        ({"score": 6}, "bad_frame"),
        ({"score": "5"}, "bad_frame"),
        ({"score": True}, "bad_frame"),
        ({"score": 5, "thread": "x"}, "bad_frame"),
        ({"score": 5, "thread": thread.number + 40}, "not_asked"),
    ):
        await widget.ws.send_json({"type": "rating", **bad})
        assert (await widget.expect("error"))["code"] == code
    assert (await desk.store.threads.get(thread.id)).csat is None

    await widget.ws.send_json({"type": "rating", "score": 5, "comment": " Lovely ", "thread": thread.number})
    assert (await widget.expect("rated"))["thread"] == thread.number
    await widget.ws.send_json({"type": "rating", "score": 1})  # again, naming no thread: the first rating stays
    assert (await widget.expect("rated"))["thread"] == thread.number
    await settle(desk.app)
    rated = await desk.store.threads.get(thread.id)
    assert (rated.csat.score, rated.csat.comment) == (5, "Lovely")
    assert (await api_thread(desk, thread.number))["csat"]["comment"] == "Lovely"
    assert sum("was rated" in text for text in desk.texts(OLGA)) == 1
    await widget.close()


async def test_without_csat_nobody_is_asked(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi"))
    await desk.say(OLGA, "Hello!")
    await desk.say(OLGA, "/close")
    assert [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)] == ["Hello!"]


async def test_outside_the_window_whatsapp_gets_the_configured_template(
    open_desk: OpenDesk, twilio: TwilioEmulator
) -> None:
    rate_us = "HX" + "c0" * 16
    desk = await open_desk(
        csat={"enabled": True, "whatsapp_template": "rate_us"},
        whatsapp={
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "sender": SENDER,
            "api_base": twilio.base_url,
            "templates": [{"name": "rate_us", "content_sid": rate_us, "variables": ["name"]}],
        },
    )
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Is it in stock?", profile_name="Bob"))
    await desk.say(OLGA, "Yes.")
    thread = await only_thread(desk)
    # The customer last wrote 25 hours ago: only a template may go out.
    await desk.store.contacts.update_identity(thread.identity, utcnow(), last_inbound_at=utcnow() - timedelta(hours=25))
    await desk.say(OLGA, "/close")
    sent = twilio.messages[-1]
    assert sent.content_sid == rate_us and '"1": "Bob"' in (sent.content_variables or "")

    # The template's quick-reply buttons answer with their text.
    await from_whatsapp(desk, twilio, twilio.inbound_button(BOB_WA, "4", "rate-4", profile_name="Bob"))
    assert (await desk.store.threads.get(thread.id)).csat.score == 4


async def test_bad_csat_settings_name_the_key(make_settings: Any) -> None:
    with pytest.raises(ConfigError, match=r"^test.toml: csat.whatsapp_template: no \[\[whatsapp.templates\]\] entry"):
        make_settings(csat={"enabled": True, "whatsapp_template": "missing"})
