"""The operator sees on their own message how far it got: a reaction for its status, a note while it waits."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from gateway.model import utcnow
from operators.indicators import MARKS
from tests.emulators.telegram import TelegramEmulator
from tests.emulators.twilio import TwilioEmulator
from tests.helpers import eventually, settle
from tests.operators.conftest import (
    ANN_TG,
    BOB_WA,
    CUSTOMER_BOT,
    OLGA,
    OPERATOR_BOT,
    SAM,
    SUPERVISORS,
    Desk,
    OpenDesk,
    boss_answers_in_the_topic,
    from_telegram,
    from_whatsapp,
    open_forum,
)


def marks(desk: Desk, chat_id: int, message_id: int) -> list[tuple[str, ...]]:
    """Every reaction the operator bot set on a message, in order."""
    return [r.emojis for r in desk.tg.reactions(chat_id=chat_id, token=OPERATOR_BOT) if r.message_id == message_id]


async def test_whatsapp_delivered_and_read_show_on_the_operators_message(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Where is my parcel?", profile_name="Bob"))
    before = len(desk.chat(OLGA))
    reply = await desk.say(OLGA, "On its way!")
    assert marks(desk, OLGA, reply) == [("👌",)]

    [sent] = twilio.messages
    for status in ("delivered", "read"):
        assert (await twilio.send_status(sent.sid, status)).response_status == 200
        await settle(desk.app)
    assert marks(desk, OLGA, reply) == [("👌",), ("👍",), ("👀",)]
    assert len(desk.chat(OLGA)) == before  # no chat noise


async def test_a_failed_message_shows_a_broken_heart_and_why(everywhere: Desk, twilio: TwilioEmulator) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Hello?", profile_name="Bob"))
    reply = await desk.say(OLGA, "Hi Bob")
    [sent] = twilio.messages
    assert (await twilio.send_status(sent.sid, "undelivered", error_code=63024)).response_status == 200
    await settle(desk.app)

    assert marks(desk, OLGA, reply)[-1] == ("💔",)
    notice = desk.chat(OLGA)[-1]
    assert notice.reply_to_message_id == reply and notice.text.startswith("⚠️ Not delivered")


async def test_the_widget_read_frame_shows_on_the_operators_message(desk: Desk) -> None:
    await desk.online(OLGA)
    visitor = await desk.visitor("Are you there?")
    reply = await desk.say(OLGA, "Yes!")
    shown = await visitor.expect("message")
    assert marks(desk, OLGA, reply) == [("👍",)]  # pushed to an open tab

    # Another visitor cannot mark it.
    stranger = await desk.visitor("hi")
    await stranger.ws.send_json({"type": "read", "id": shown["id"]})
    await stranger.ws.send_json({"type": "read", "id": 17})
    assert (await stranger.expect("error"))["code"] == "bad_frame"
    await settle(desk.app)
    assert marks(desk, OLGA, reply) == [("👍",)]

    await visitor.ws.send_json({"type": "read", "id": shown["id"]})
    await eventually(lambda: _async(marks(desk, OLGA, reply)[-1] == ("👀",)), "the read mark")
    stored = await desk.store.messages.collection.find_one({"text": "Yes!"})
    assert stored["status"] == "read"


async def test_a_send_held_by_flood_control_shows_that_it_waits_and_why(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi"))
    desk.tg.fail(ANN_TG, 429, retry_after=65, token=CUSTOMER_BOT, method="sendMessage")
    reply = await desk.say(OLGA, "Hello Ann")

    assert marks(desk, OLGA, reply) == [("✍",)]
    note = desk.chat(OLGA)[-1]
    assert note.reply_to_message_id == reply
    assert note.text.startswith("⏳ #") and "trying again in 1 min" in note.text and "wait 65 s" in note.text

    # The 65 seconds pass.
    await desk.store.messages.collection.update_one({"text": "Hello Ann"}, {"$set": {"next_attempt_at": utcnow()}})

    async def went_out() -> bool:
        return bool(desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)) and marks(desk, OLGA, reply)[-1] == ("👌",)

    await eventually(went_out, "the send after the wait")
    await settle(desk.app)
    assert [d.message_id for d in desk.tg.deletions if d.chat_id == OLGA] == [note.message_id]


async def _async(value: bool) -> bool:
    return value


async def test_help_describes_every_indicator(desk: Desk) -> None:
    for operator_id, saying in ((OLGA, "read (WhatsApp, web chat)"), (SAM, "прочитано (WhatsApp, веб-чат)")):
        await desk.say(operator_id, "/help")
        text = desk.chat(operator_id)[-1].text
        assert saying in text
        assert all(f"{emoji} " in text for emoji in (*MARKS.values(), "⏳", "✏️", "↩️", "→"))


async def test_a_flood_wait_sat_out_in_the_send_is_shown_while_it_lasts(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hi"))
    # Short enough to be sat out inside the send (a real 11 s), long enough to be worth showing.
    desk.tg.fail(ANN_TG, 429, retry_after=11, token=CUSTOMER_BOT, method="sendMessage")
    reply = await desk.say(OLGA, "Hello Ann")
    await settle(desk.app)

    assert [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)] == ["Hello Ann"]
    assert marks(desk, OLGA, reply) == [("✍",), ("👌",)]
    [note] = [m for m in desk.chat(OLGA) if (m.text or "").startswith("⏳")]
    assert note.reply_to_message_id == reply and "wait 11 s" in note.text
    assert note.message_id in [d.message_id for d in desk.tg.deletions if d.chat_id == OLGA]


async def test_a_supervisors_message_in_the_forum_topic_gets_its_mark_there(
    tg: TelegramEmulator, open_desk: OpenDesk
) -> None:
    desk = await open_forum(tg, open_desk)
    visitor, answer, shown = await boss_answers_in_the_topic(desk, "Yes")
    assert marks(desk, SUPERVISORS, answer) == [("👍",)]
    await visitor.ws.send_json({"type": "read", "id": shown["id"]})
    await eventually(lambda: _async(marks(desk, SUPERVISORS, answer)[-1] == ("👀",)), "read")


async def test_a_read_frame_that_overtakes_its_send_is_kept_until_the_send_returns(desk: Desk) -> None:
    """The visitor's tab may report a message read before the gateway has recorded that it sent it."""
    await desk.online(OLGA)
    visitor = await desk.visitor("Are you there?")
    await desk.say(OLGA, "Yes!")
    await visitor.expect("message")
    # A second reply, stored and about to be sent (its send has not returned: no channel id yet).
    doc = await desk.store.messages.collection.find_one({"text": "Yes!"})
    doc |= {"_id": ObjectId(), "text": "One moment", "status": "queued", "channel_message_id": None}
    doc["next_attempt_at"] = utcnow() + timedelta(hours=1)
    await desk.store.messages.collection.insert_one(doc)

    await visitor.ws.send_json({"type": "read", "id": str(doc["_id"])})
    await settle(desk.app)
    await desk.store.messages.collection.update_one({"_id": doc["_id"]}, {"$set": {"next_attempt_at": utcnow()}})

    async def read() -> bool:
        stored = await desk.store.messages.collection.find_one({"_id": doc["_id"]})
        return stored["status"] == "read"

    await eventually(read, "the early read report applied once the send returned")
