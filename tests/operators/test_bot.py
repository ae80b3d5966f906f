"""The operator bot on the Telegram emulator: access, presence, cards, replies to the right customer."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from channels.base import InboundMessage
from gateway.events import ThreadAssigned
from gateway.keys import BUS, INBOX
from gateway.model import Content, Direction, IdentityRef, Kind, MessageStatus, OperatorStatus, utcnow
from operators.handlers.help import OPERATOR_COMMANDS, SUPERVISOR_COMMANDS
from operators.keys import ROUTING
from operators.texts import t
from tests.emulators.telegram import SECRET_HEADER
from tests.helpers import Widget, settle
from tests.hostile import mutated
from tests.hostile import text as hostile_text
from tests.operators.conftest import ANN_TG, BOSS, CUSTOMER_BOT, EVE, OLGA, OPERATOR_BOT, SAM, Desk, OpenDesk


async def test_webhook_and_menu_are_registered_at_start(desk: Desk) -> None:
    webhook = desk.tg.webhook(OPERATOR_BOT)
    assert webhook.url.endswith("/operators/telegram") and webhook.secret_token == "desk-secret"
    everyone = [c["command"] for c in desk.tg.commands(OPERATOR_BOT)]
    assert "chats" in everyone and "queue" not in everyone
    supervisor = [c["command"] for c in desk.tg.commands(OPERATOR_BOT, scope={"type": "chat", "chat_id": BOSS})]
    assert {"chats", "queue", "assign", "stats"} <= set(supervisor)
    russian = desk.tg.commands(OPERATOR_BOT, language_code="ru")
    assert any("диалог" in c["description"] for c in russian)


async def test_wrong_or_missing_secret_is_refused(desk: Desk) -> None:
    update = desk.tg.text_update(OPERATOR_BOT, OLGA, "/online")
    assert await desk.tg.deliver(OPERATOR_BOT, update, secret="wrong") == 401
    assert await desk.tg.deliver(OPERATOR_BOT, update, secret=None) == 401
    assert (await desk.store.operators.get(OLGA)).status is OperatorStatus.OFFLINE
    response = await desk.client.post("/operators/telegram", data="not json", headers={SECRET_HEADER: "desk-secret"})
    assert response.status == 200  # acknowledged and kept as a dead letter: Telegram must not retry it forever
    [letter] = await desk.store.dead_letters.latest()
    assert (letter.source, letter.payload) == ("operator_bot", "not json")


async def test_strangers_get_one_polite_refusal_and_nothing_else(desk: Desk) -> None:
    for text in ("/start", "/online", "hello?", "/queue"):
        await desk.say(EVE, text)
    assert len(desk.chat(EVE)) == 1
    assert "only for the support team" in desk.texts(EVE)[0]


async def test_presence_commands_and_buttons(desk: Desk) -> None:
    await desk.say(OLGA, "/start")
    assert "offline" in desk.texts(OLGA)[-1]  # operators start offline
    await desk.say(OLGA, "/online")
    assert (await desk.store.operators.get(OLGA)).status is OperatorStatus.ONLINE
    assert "online" in desk.texts(OLGA)[-1] and "0/3" in desk.texts(OLGA)[-1]
    await desk.say(SAM, "🟡 Отошёл")  # the Russian keyboard button
    assert (await desk.store.operators.get(SAM)).status is OperatorStatus.AWAY
    assert "отошёл" in desk.texts(SAM)[-1]
    await desk.say(OLGA, "⚫ Offline")
    assert (await desk.store.operators.get(OLGA)).status is OperatorStatus.OFFLINE
    log = await desk.store.operators.presence_log.find({"operator_id": OLGA}).to_list()
    assert [entry["status"] for entry in log] == ["online", "offline"]


async def test_card_then_messages_reach_the_assigned_operator_only(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Hello, my parcel is late", "c-1")
    await widget.say("Order 1234", "c-2")
    await settle(desk.app)

    thread = (await desk.store.threads.find())[0]
    assert thread.operator_id == OLGA
    texts = desk.texts(OLGA)
    card = next(text for text in texts if text.startswith(f"#{thread.number} · "))
    assert "Web chat" in card
    assert texts[-2:] == [f"#{thread.number} · Hello, my parcel is late", f"#{thread.number} · Order 1234"]
    card_message = next(m for m in desk.chat(OLGA) if m.reply_markup)
    buttons = [b["callback_data"] for row in card_message.reply_markup["inline_keyboard"] for b in row]
    assert buttons == [f"{a}:{thread.number}" for a in ("close", "transfer", "history", "info", "block")]
    assert desk.chat(SAM) == []


async def test_reply_by_telegram_reply_reaches_the_right_visitor(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("I'm Ann", "a-1")
    bob = await desk.visitor("I'm Bob", "b-1")
    ann_copy = next(m for m in desk.chat(OLGA) if m.text and m.text.endswith("I'm Ann"))
    bob_copy = next(m for m in desk.chat(OLGA) if m.text and m.text.endswith("I'm Bob"))

    await desk.say(OLGA, "Hi Ann!", reply_to=ann_copy.message_id)
    await desk.say(OLGA, "Hi Bob!", reply_to=bob_copy.message_id)
    assert (await ann.expect("message"))["text"] == "Hi Ann!"
    got = await bob.expect("message")
    assert got["text"] == "Hi Bob!" and got["author"] == {"type": "operator", "name": "Olga"}

    stored = await desk.store.messages.collection.find({"direction": "out", "author": "operator"}).to_list()
    ann_in = await desk.store.messages.collection.find_one({"text": "I'm Ann"})
    reply = next(m for m in stored if m["text"] == "Hi Ann!")
    assert reply["reply_to"] == str(ann_in["_id"]) and reply["author_id"] == OLGA
    thread = await desk.store.threads.get(ann_in["thread_id"])
    assert thread.first_response_at is not None and thread.unread == 0


async def test_plain_message_goes_to_the_only_conversation_and_is_refused_when_ambiguous(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("first customer", "a-1")
    await desk.say(OLGA, "Plain answer")
    assert (await ann.expect("message"))["text"] == "Plain answer"

    bob = await desk.visitor("second customer", "b-1")
    sent_before = await desk.store.messages.collection.count_documents({"direction": "out"})
    await desk.say(OLGA, "Which one gets this?")
    assert await desk.store.messages.collection.count_documents({"direction": "out"}) == sent_before
    question = desk.chat(OLGA)[-1]
    assert "2 open conversations" in question.text and "nothing was sent" in question.text
    picks = [b["callback_data"] for row in question.reply_markup["inline_keyboard"] for b in row]
    assert len(picks) == 2

    bob_thread = await desk.store.threads.open_for(
        (await desk.store.messages.collection.find_one({"text": "second customer"}))["contact_id"]
    )
    await desk.press(OLGA, question.message_id, f"pick:{bob_thread.number}")
    assert desk.tg.callback_answers[-1].text.startswith(f"#{bob_thread.number}")
    await desk.say(OLGA, "Now this goes to Bob")
    assert (await bob.expect("message"))["text"] == "Now this goes to Bob"
    # Anything sent to Ann since would arrive before the ack of her next message.
    await ann.ws.send_json({"type": "message", "text": "sync", "client_id": "a-2"})
    assert [f["type"] for f in await ann.frames_until("ack")] == ["ack"]


async def test_reply_to_an_unknown_message_or_someone_elses_thread_sends_nothing(desk: Desk) -> None:
    await desk.online(OLGA, SAM)
    await desk.visitor("for Olga", "a-1")
    thread = (await desk.store.threads.find())[0]
    olga_copy = next(m for m in desk.chat(OLGA) if m.text and m.text.endswith("for Olga"))

    await desk.say(OLGA, "/status")
    status_answer = desk.chat(OLGA)[-1]  # a bot message that belongs to no conversation
    await desk.say(OLGA, "which customer is this for?", reply_to=status_answer.message_id)
    assert "can't tell which conversation" in desk.texts(OLGA)[-1]

    await desk.app[ROUTING].transfer(thread, to_operator=await desk.store.operators.get(SAM), by=BOSS)
    await settle(desk.app)
    await desk.say(OLGA, "late answer", reply_to=olga_copy.message_id)
    assert f"#{thread.number} is not your conversation" in desk.texts(OLGA)[-1]
    await desk.say(OLGA, "plain answer")  # no conversation left
    assert "no open conversations" in desk.texts(OLGA)[-1]
    assert await desk.store.messages.collection.count_documents({"direction": "out", "author": "operator"}) == 0


async def test_failed_delivery_comes_back_as_a_reply_with_the_reason(desk: Desk) -> None:
    await desk.online(OLGA)
    telegram_customer = IdentityRef("telegram", "support", "4242")  # no [telegram] channel configured
    await desk.app[INBOX].on_inbound(
        InboundMessage(sender=telegram_customer, message_id="4242:1", content=Content(Kind.TEXT, "anyone there?"))
    )
    await settle(desk.app)
    copy = next(m for m in desk.chat(OLGA) if m.text and m.text.endswith("anyone there?"))
    answer = await desk.say(OLGA, "Yes, hello!", reply_to=copy.message_id)

    failed = await desk.store.messages.collection.find_one({"direction": "out", "text": "Yes, hello!"})
    assert failed["status"] == MessageStatus.FAILED.value
    report = desk.chat(OLGA)[-1]
    assert "Not delivered" in report.text and "not configured" in report.text
    assert report.reply_to_message_id == answer


async def test_operator_photo_reaches_a_widget_visitor_as_a_signed_link(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("can you show me?", "a-1")
    photo = b"\xff\xd8\xff\xe0" + b"fake-jpeg-bytes" * 20
    await desk.send(desk.tg.photo_update(OPERATOR_BOT, OLGA, photo, caption="Here it is"))
    frame = await widget.expect("message")
    assert frame["text"].startswith("Here it is")
    link = URL(next(word for word in frame["text"].split() if "/media/" in word))
    response = await desk.client.get(link.path)
    assert response.status == 200 and await response.read() == photo
    assert (await desk.client.get(link.path[:-3] + "xyz")).status == 404


async def test_assignment_after_operator_comes_online_shows_the_backlog_once(desk: Desk) -> None:
    await desk.visitor("waiting one", "a-1")
    await desk.visitor("waiting two", "b-1")
    assert desk.chat(OLGA) == []
    await desk.online(OLGA)
    texts = desk.texts(OLGA)
    assert sum(text.endswith("waiting one") for text in texts) == 1
    assert sum(text.endswith("waiting two") for text in texts) == 1
    busy = await desk.store.messages.collection.find({"author": "system"}).to_list()
    assert len(busy) == 2 and all(m["direction"] == Direction.OUT.value for m in busy)


async def test_a_redelivered_or_duplicated_operator_update_sends_one_message(desk: Desk) -> None:
    await desk.online(OLGA)
    ann = await desk.visitor("I'm Ann", "a-1")
    reply = desk.tg.text_update(OPERATOR_BOT, OLGA, "Only once, please")
    for _ in range(5):  # Telegram delivers it again whenever our answer is late
        assert await desk.send(reply) == 200
    duplicated = desk.tg.text_update(OPERATOR_BOT, OLGA, "Once more, only once")
    statuses = await asyncio.gather(*(desk.tg.deliver(OPERATOR_BOT, duplicated) for _ in range(5)))
    await settle(desk.app)
    assert statuses == [200] * 5
    # The same Telegram message in a new update (a retry from another path) is not a new reply either.
    again = desk.tg.text_update(OPERATOR_BOT, OLGA, "Only once, please")
    again["message"]["message_id"] = reply["message"]["message_id"]
    assert await desk.send(again) == 200

    sent = [m["text"] async for m in desk.store.messages.collection.find({"direction": "out", "author": "operator"})]
    assert sorted(sent) == ["Once more, only once", "Only once, please"]
    assert [(await ann.expect("message"))["text"] for _ in range(2)] == ["Only once, please", "Once more, only once"]


@pytest.mark.parametrize(
    "data", ["pick:abc", "pick:", "retry:zz", "tpl:1", "tpl:x:y", "hist:1:-1", "close:²", "x" * 64]
)
async def test_malformed_button_data_is_answered_and_changes_nothing(desk: Desk, data: str) -> None:
    await desk.online(OLGA)
    await desk.visitor("hello", "a-1")
    card = next(m for m in desk.chat(OLGA) if m.reply_markup)
    real = card.reply_markup["inline_keyboard"][0][0]["callback_data"]
    press = desk.tg.callback_update(OPERATOR_BOT, OLGA, card.message_id, real)
    press["callback_query"]["data"] = data  # what a forged or stale client could send
    before = await desk.store.messages.collection.count_documents({})
    assert await desk.send(press) == 200
    assert await desk.store.messages.collection.count_documents({}) == before
    assert await desk.store.dead_letters.count() == 0


async def test_a_duplicated_close_press_says_goodbye_once(open_desk: OpenDesk) -> None:
    desk = await open_desk(routing={"closing_message": {"en": "Thanks, bye!"}})
    await desk.online(OLGA)
    ann = await desk.visitor("hello", "a-1")
    card = next(m for m in desk.chat(OLGA) if m.reply_markup)
    close = next(
        b["callback_data"]
        for row in card.reply_markup["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("close:")
    )
    press = desk.tg.callback_update(OPERATOR_BOT, OLGA, card.message_id, close)
    assert await asyncio.gather(*(desk.tg.deliver(OPERATOR_BOT, press) for _ in range(4))) == [200] * 4
    assert await desk.send(press) == 200
    await settle(desk.app)
    goodbyes = await desk.store.messages.collection.count_documents({"text": "Thanks, bye!"})
    assert goodbyes == 1
    assert (await ann.expect("message"))["text"] == "Thanks, bye!"


COMMANDS = [f"/{c}" for c in (*OPERATOR_COMMANDS, *SUPERVISOR_COMMANDS)] + ["/start", "/", "/nosuch", "plain"]
_update_ids = itertools.count(900_000_000)
BUTTONS = ["close", "transfer", "history", "hist", "info", "block", "unblock", "pick", "retry", "tpl", "xfer", "dup:m",
           "dup:n"]  # fmt: skip


@settings(max_examples=80)
@given(data=st.data())
async def test_no_operator_update_however_hostile_gets_a_5xx_or_a_traceback(
    desk: Desk, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    if not await desk.store.threads.count_open():
        await desk.online(OLGA, BOSS)
        await desk.visitor("hello", "a-1")
    who = data.draw(st.sampled_from([OLGA, BOSS, EVE]), label="who")
    card = next(m for m in desk.chat(OLGA) if m.reply_markup)
    kind = data.draw(st.sampled_from(["command", "button", "mutated"]), label="kind")
    if kind == "command":
        words = data.draw(st.lists(hostile_text, max_size=3), label="args")
        update = desk.tg.text_update(OPERATOR_BOT, who, " ".join([data.draw(st.sampled_from(COMMANDS)), *words]))
    else:
        parts = data.draw(st.lists(hostile_text, max_size=3), label="button")
        update = {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_update_ids)),
                "from": {"id": who, "is_bot": False, "first_name": "Someone"},
                "chat_instance": "1",
                "data": ":".join([data.draw(st.sampled_from(BUTTONS)), *parts]),
                "message": {"message_id": card.message_id, "date": 0, "chat": {"id": who, "type": "private"}},
            },
        }
        if kind == "mutated":
            update = data.draw(mutated(update), label="update")
    status = await _post(desk, update)
    await settle(desk.app)
    assert status == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def _post(desk: Desk, update: dict) -> int:
    body = json.dumps(update)
    response = await desk.client.post("/operators/telegram", data=body, headers={SECRET_HEADER: "desk-secret"})
    return response.status


async def test_five_messages_sent_at_once_by_a_new_customer_are_each_shown_once(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor()
    words = ["one", "two", "three", "four", "five"]
    for i, word in enumerate(words):  # all five before the first is even acknowledged
        await widget.ws.send_json({"type": "message", "text": word, "client_id": f"b-{i}"})
    for _ in words:
        await widget.expect("ack")
    await settle(desk.app)
    texts = desk.texts(OLGA)
    thread = await desk.store.threads.by_number(1)
    assert thread is not None and thread.operator_id == OLGA
    assert [t for t in texts if t.startswith("#1 · ") and t.split(" · ", 1)[1] in words] == [
        f"#1 · {word}" for word in words
    ]
    assert sum(t.startswith("#1 · Visitor") for t in texts) == 1  # one card


async def test_a_burst_from_new_telegram_customers_shows_every_message_once(everywhere: Desk) -> None:
    await everywhere.online(OLGA, SAM)
    for user in (5002, 5003):
        everywhere.tg.user(user, f"User {user}")
    updates = [
        everywhere.tg.text_update(CUSTOMER_BOT, user, f"{user} says {i}")
        for user in (ANN_TG, 5002, 5003)
        for i in range(5)
    ]
    statuses = await asyncio.gather(*(everywhere.tg.deliver(CUSTOMER_BOT, u) for u in updates))
    assert set(statuses) == {200}
    await settle(everywhere.app)
    shown = [t.split(" · ", 1)[1] for t in everywhere.texts(OLGA) + everywhere.texts(SAM) if " says " in t]
    assert sorted(shown) == sorted(f"{user} says {i}" for user in (ANN_TG, 5002, 5003) for i in range(5))


async def test_a_reply_to_a_message_whose_thread_is_not_stored_yet_goes_by_its_tag(desk: Desk) -> None:
    await desk.online(OLGA, SAM)
    widget = await desk.visitor("Is it in stock?", "c-1")
    mine = next(m for m in desk.chat(OLGA) if m.text == "#1 · Is it in stock?")
    # The bot has yet to store which thread its message belongs to (a burst: it sent it a moment ago).
    await desk.store.relay.collection.delete_many({"chat_id": OLGA})
    await desk.say(OLGA, "Yes, 3 left", reply_to=mine.message_id)
    assert (await widget.expect("message"))["text"] == "Yes, 3 left"

    # A tag names a conversation that is not (or no longer) Olga's: asked, never sent to that customer.
    await desk.say(OLGA, "/transfer 1 @sam")
    await desk.store.relay.collection.delete_many({"chat_id": OLGA})
    await desk.say(OLGA, "And 2 more tomorrow", reply_to=mine.message_id)
    assert desk.texts(OLGA)[-1] == t("en", "reply.unknown")
    assert await desk.store.messages.collection.count_documents({"text": "And 2 more tomorrow"}) == 0
    # Nor does a tag in an operator's own message count: only the bot's messages are tagged by the bot.
    await desk.visitor("Second customer", "d-1")  # #2, Olga's
    own = await desk.say(OLGA, "/help #2")
    await desk.say(OLGA, "hello there", reply_to=own)
    assert await desk.store.messages.collection.count_documents({"text": "hello there", "direction": "out"}) == 0


async def test_the_operator_who_loses_a_chat_is_told_once(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("Hello", "c-1")
    offline = desk.tg.text_update(OPERATOR_BOT, OLGA, "/offline")
    await desk.send(offline)
    await desk.send(offline)  # Telegram delivers the update again
    gone = "📤 #1 went back to the queue: you went offline."
    assert desk.texts(OLGA).count(gone) == 1
    # The same move seen again (another process, a repeated event) is not told twice.
    thread = await desk.store.threads.get((await desk.store.threads.by_number(1)).id)
    desk.app[BUS].publish(
        ThreadAssigned(thread=thread, operator_id=None, previous_operator_id=OLGA, reason="released", why="offline")
    )
    await settle(desk.app)
    assert desk.texts(OLGA).count(gone) == 1

    # Away past the grace period: the routing round hands the chat back and says why.
    await desk.online(SAM)  # Sam takes #1 from the queue
    await desk.say(SAM, "/away")
    await desk.store.operators.update(SAM, {"status_since": utcnow() - timedelta(hours=1)})
    await desk.app[ROUTING].release_lapsed()
    await desk.app[ROUTING].release_lapsed()
    await settle(desk.app)
    assert desk.texts(SAM).count("📤 #1 вернулся в очередь: вы отошли больше чем на 5 мин.") == 1  # Sam reads Russian


async def test_help_describes_every_indicator(desk: Desk) -> None:
    await desk.say(BOSS, "/help")
    help_text = desk.texts(BOSS)[-1]
    assert len(help_text) <= 4096
    for indicator in ("✏️", "→ Name", "📝", "🧭", "🪪", "🚪", "🔙", "typing…", "📤", "↪️", "✅"):
        assert indicator in help_text, indicator
    await desk.say(SAM, "/help")
    assert "🧭" in desk.texts(SAM)[-1] and "Что показывает бот" in desk.texts(SAM)[-1]


async def test_two_processes_relaying_one_burst_show_each_message_once(desk: Desk, serve: Any) -> None:
    # A second gateway process on the first one's database, with the same operator bot.
    settings = {
        "storage": {"uri": desk.store.uri},
        "operator_bot": {"token": OPERATOR_BOT, "webhook_secret": "desk-secret", "api_base": desk.tg.base_url},
        "operators": [{"telegram_id": OLGA, "name": "Olga", "username": "olga"}],
    }
    other = await serve(**settings)
    await desk.online(OLGA)
    here = await desk.visitor()
    there = await Widget.connect(other, here.token)  # the same visitor, a tab served by the other process
    for i in range(6):
        tab = here if i % 2 == 0 else there
        await tab.ws.send_json({"type": "message", "text": f"burst {i}", "client_id": f"m-{i}"})
    for tab in (here, there):
        for _ in range(3):
            await tab.expect("ack")
    await settle(desk.app)
    await settle(other.app)
    shown = [t for t in desk.texts(OLGA) if " · burst " in t]
    assert sorted(shown) == [f"#1 · burst {i}" for i in range(6)]
