"""Possible duplicate customers in the operator bot: offers, the Merge / Not the same buttons, /duplicates,
/merge and /unmerge, through the running gateway and the operator bot on the Telegram emulator."""

from __future__ import annotations

import string
from typing import Any

from channels.base import InboundMessage
from gateway.keys import INBOX, MERGER, PROFILES
from gateway.model import Contact, Direction, IdentityRef, Thread
from gateway.storage.duplicates import Duplicate, DuplicateStatus
from operators.texts import CATALOG
from operators.texts import duplicates as duplicate_texts
from tests.emulators.telegram import SentMessage
from tests.helpers import PHONE, TELEGRAM, WHATSAPP, Widget, eventually, from_whatsapp, inbound, settle, telegram_share
from tests.operators.conftest import BOSS, EVE, OLGA, OPERATOR_BOT, SAM, Desk, OpenDesk

PRETTY = "+1 415-555-2671"
REASON = f"🔎 Why: same phone {PRETTY} (verified on both); names 90% alike"
NOT_ALLOWED_RU = "Решить это может только супервизор или оператор одного из этих диалогов. Ничего не изменено."


async def writes(desk: Desk, message: InboundMessage) -> None:
    """A customer message, handed to the hub exactly as a channel does."""
    await desk.app[INBOX].on_inbound(message)
    await settle(desk.app)


async def card(desk: Desk, ref: IdentityRef) -> Contact:
    contact = await desk.store.contacts.owner(ref.key)
    assert contact is not None
    return contact


async def thread(desk: Desk, ref: IdentityRef) -> Thread:
    found = await desk.store.threads.open_for((await card(desk, ref)).id)
    assert found is not None
    return found


async def ann_on_two_channels(desk: Desk, *, sam: bool = True) -> tuple[Thread, Thread, Duplicate]:
    """Ann writes on WhatsApp (Olga's) and then shares her number on Telegram (Sam's, or Olga's too)."""
    await desk.online(OLGA)
    await writes(desk, from_whatsapp("SM1", "my order is late"))
    if sam:
        await desk.online(SAM)
    await writes(desk, telegram_share())
    await writes(desk, inbound(TELEGRAM, "5001:2", "it is order 1234"))
    duplicates = await desk.store.duplicates.pending()
    assert len(duplicates) == 1
    return await thread(desk, WHATSAPP), await thread(desk, TELEGRAM), duplicates[0]


def buttons(message: SentMessage) -> list[str]:
    return [b["callback_data"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def labels(message: SentMessage) -> list[str]:
    return [b["text"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def offers(desk: Desk, chat_id: int) -> list[SentMessage]:
    """Every duplicate offer the bot sent into a chat."""
    return [m for m in desk.chat(chat_id) if any(d.startswith("dup:") for d in buttons(m))]


def current(desk: Desk, chat_id: int, message: SentMessage) -> dict[str, Any]:
    """A bot message as the operator sees it now (edits applied)."""
    found = desk.tg.message(OPERATOR_BOT, chat_id, message.message_id)
    assert found is not None
    return found


async def press_as(desk: Desk, operator_id: int, chat_id: int, message: SentMessage, data: str) -> None:
    """A button press by `operator_id` on a message in `chat_id` (someone else's chat: a forwarded callback)."""
    update = desk.tg.callback_update(OPERATOR_BOT, operator_id, message.message_id, data, chat_id=chat_id)
    assert await desk.send(update) == 200


async def live_cards(desk: Desk) -> list[dict[str, Any]]:
    return await desk.store.contacts.collection.find({"merged_into": None}).to_list()


# -- the offer and the Merge button ---------------------------------------------------------------


async def test_one_offer_to_each_operator_and_merge_leaves_one_card_with_everything(desk: Desk) -> None:
    store = desk.store
    await desk.online(OLGA)
    await writes(desk, from_whatsapp("SM1", "my order is late"))
    wa_thread = await thread(desk, WHATSAPP)
    await desk.say(OLGA, f"/note {wa_thread.number} prefers e-mail")
    await desk.online(SAM)
    await writes(desk, telegram_share())
    await writes(desk, inbound(TELEGRAM, "5001:2", "it is order 1234"))
    await writes(desk, from_whatsapp("SM2", "the same number again adds nothing"))
    tg_thread = await thread(desk, TELEGRAM)
    await desk.say(SAM, f"/note {tg_thread.number} asked about refunds")
    wa, tg = wa_thread.number, tg_thread.number
    assert (wa_thread.operator_id, tg_thread.operator_id) == (OLGA, SAM)

    # One duplicate; each operator gets it once, about their own customer, with the reason.
    assert await store.duplicates.collection.count_documents({}) == 1
    duplicate = (await store.duplicates.pending())[0]
    assert [len(offers(desk, o)) for o in (OLGA, SAM, BOSS)] == [1, 1, 0]
    olga_offer, sam_offer = offers(desk, OLGA)[0], offers(desk, SAM)[0]
    lines = olga_offer.text.split("\n")
    assert lines[:3] == [
        f"🔁 #{wa} · Ann · WhatsApp {PRETTY} may be the same person as:",
        "👤 Ann Lee · Telegram",
        f"📞 {PRETTY}",
    ]
    assert lines[3].startswith(f"🗂 Last conversation: #{tg} · ") and lines[3].endswith(" UTC · open")
    assert lines[4:] == [REASON, f"Merge keeps the older card, #{wa}."]
    tg_card = await card(desk, TELEGRAM)
    assert buttons(olga_offer) == [
        f"dup:m:{duplicate.id}:0",
        f"dup:n:{duplicate.id}",
        f"dup:m:{duplicate.id}:{tg_card.id}",
    ]
    assert labels(olga_offer) == ["🔗 Merge", "🚫 Not the same person", f"🔗 Merge, keep #{tg}"]
    assert all(len(data.encode()) <= 64 for data in buttons(olga_offer))
    # Sam reads it from his side, in Russian.
    sam_lines = sam_offer.text.split("\n")
    assert sam_lines[:2] == [
        f"🔁 #{tg} · Ann Lee · Telegram — возможно, тот же человек, что и:",
        f"👤 Ann · WhatsApp {PRETTY}",
    ]
    assert sam_lines[-2:] == [
        f"🔎 Почему: тот же телефон {PRETTY} (подтверждён у обоих); имена похожи на 90%",
        f"При объединении остаётся более старая карточка, #{wa}.",
    ]
    assert labels(sam_offer) == ["🔗 Объединить", "🚫 Это разные люди", f"🔗 Объединить, оставить #{tg}"]

    await desk.press(OLGA, olga_offer.message_id, f"dup:m:{duplicate.id}:0")

    merged = "✅ Merged (merge #1): Ann Lee is now part of Ann. A supervisor can undo it with /unmerge 1."
    spent = current(desk, OLGA, olga_offer)
    assert spent["text"] == f"{olga_offer.text}\n\n{merged}" and "reply_markup" not in spent
    # One card with both identities, every message and both notes; the older (WhatsApp) card is kept.
    kept = await card(desk, WHATSAPP)
    assert [c["_id"] for c in await live_cards(desk)] == [kept.id]
    assert {i.key for i in kept.identities} == {WHATSAPP.key, TELEGRAM.key}
    assert kept.phones == (PHONE,)
    assert [n.text for n in kept.notes] == ["prefers e-mail", "asked about refunds"]
    assert (await store.contacts.get(tg_card.id)).merged_into == kept.id
    assert await store.messages.collection.distinct("contact_id") == [kept.id]
    # Both conversations were open: Sam's was joined into Olga's, and Sam is told who has it now.
    joined, closed = await store.threads.get(wa_thread.id), await store.threads.get(tg_thread.id)
    assert joined.open and joined.operator_id == OLGA
    assert not closed.open and closed.joined_into == joined.id
    customer = [m.content.text for m in await store.messages.for_thread(joined.id) if m.direction is Direction.IN]
    assert customer == ["my order is late", "", "it is order 1234", "the same number again adds nothing"]
    assert (await store.operators.get(SAM)).chats == ()
    assert (
        f"🔗 Ваш диалог #{tg} присоединён к #{wa}: клиенты объединены (объединение #1). Теперь его ведёт Olga."
    ) in desk.texts(SAM)
    assert (
        f"🔗 #{wa}: Ann Lee and Ann are one customer card now (merge #1). "
        f"Their conversation #{tg} was joined into this one."
    ) in desk.texts(OLGA)
    assert (await store.duplicates.get(duplicate.id)).status is DuplicateStatus.MERGED

    # The next message from either channel reaches Olga in the kept conversation, and not Sam.
    sam_before = len(desk.chat(SAM))
    await writes(desk, inbound(TELEGRAM, "5001:3", "any news?"))
    await writes(desk, from_whatsapp("SM3", "hello?"))
    assert desk.texts(OLGA)[-2:] == [f"#{wa} · any news?", f"#{wa} · hello?"]
    assert len(desk.chat(SAM)) == sam_before

    # Sam's offer is stale now: pressing it answers clearly and changes nothing.
    await desk.press(SAM, sam_offer.message_id, f"dup:m:{duplicate.id}:0")
    assert current(desk, SAM, sam_offer)["text"].endswith("\n\nУже объединены: оба теперь Ann. Ничего не изменено.")
    assert await store.merges.collection.count_documents({}) == 1
    # A card that reaches someone later shows the merged card.
    await desk.say(OLGA, f"/info {wa}")
    assert "Ann Lee" in desk.texts(OLGA)[-1] and "Telegram" in desk.texts(OLGA)[-1]


async def test_merge_keeping_the_other_card_keeps_it(desk: Desk) -> None:
    wa_thread, tg_thread, duplicate = await ann_on_two_channels(desk)
    wa, tg = wa_thread.number, tg_thread.number
    wa_card, tg_card = await card(desk, WHATSAPP), await card(desk, TELEGRAM)
    olga_offer = offers(desk, OLGA)[0]

    await desk.press(OLGA, olga_offer.message_id, f"dup:m:{duplicate.id}:{tg_card.id}")

    assert current(desk, OLGA, olga_offer)["text"].endswith(
        "\n\n✅ Merged (merge #1): Ann is now part of Ann Lee. A supervisor can undo it with /unmerge 1."
    )
    assert [c["_id"] for c in await live_cards(desk)] == [tg_card.id]
    assert (await desk.store.contacts.get(wa_card.id)).merged_into == tg_card.id
    kept = await desk.store.contacts.get(tg_card.id)
    assert {i.key for i in kept.identities} == {WHATSAPP.key, TELEGRAM.key}
    # Olga's conversation was joined into Sam's (the kept card's), and she is told.
    assert (await desk.store.threads.get(wa_thread.id)).joined_into == tg_thread.id
    assert (
        f"🔗 Your conversation #{wa} was joined into #{tg}: the customers were merged (merge #1). Sam has it now."
    ) in desk.texts(OLGA)
    assert (
        f"🔗 #{tg}: Ann и Ann Lee — теперь одна карточка клиента (объединение #1). "
        f"Его диалог #{wa} присоединён к этому."
    ) in desk.texts(SAM)
    await writes(desk, from_whatsapp("SM2", "hello?"))
    assert desk.texts(SAM)[-1] == f"#{tg} · hello?"


# -- Not the same person --------------------------------------------------------------------------


async def test_not_the_same_person_is_remembered_and_never_offered_again(desk: Desk) -> None:
    store, profiles = desk.store, desk.app[PROFILES]
    wa_thread, _tg_thread, duplicate = await ann_on_two_channels(desk)
    olga_offer, sam_offer = offers(desk, OLGA)[0], offers(desk, SAM)[0]

    await desk.press(SAM, sam_offer.message_id, f"dup:n:{duplicate.id}")

    spent = current(desk, SAM, sam_offer)
    assert spent["text"].endswith("\n\nПринято: это разные люди. Эта пара больше не будет предлагаться.")
    assert "reply_markup" not in spent
    stored = await store.duplicates.get(duplicate.id)
    assert (stored.status, stored.decided_by) == (DuplicateStatus.DISMISSED, SAM)

    # Olga's offer is stale: Merge and Not the same both answer that it was decided, and change nothing.
    await desk.press(OLGA, olga_offer.message_id, f"dup:m:{duplicate.id}:0")
    assert current(desk, OLGA, olga_offer)["text"].endswith(
        "\n\nAlready decided: not the same person. Nothing changed; /merge can still merge them."
    )
    assert len(await live_cards(desk)) == 2 and await store.merges.collection.count_documents({}) == 0

    # A new e-mail on both cards matches the pair again, from either side: nobody is offered it.
    await profiles.update_contact(await card(desk, TELEGRAM), email="ann@example.com")
    await profiles.update_contact(await card(desk, WHATSAPP), email="ann@example.com")
    await profiles.update_contact(await card(desk, WHATSAPP), phone="+1 212 555 0123")
    await profiles.update_contact(await card(desk, TELEGRAM), phone="+1 212 555 0123")
    await settle(desk.app)
    assert [len(offers(desk, o)) for o in (OLGA, SAM, BOSS)] == [1, 1, 0]
    stored = await store.duplicates.get(duplicate.id)
    assert stored.status is DuplicateStatus.DISMISSED and len(stored.matches) == 3
    assert await store.duplicates.collection.count_documents({}) == 1
    # Nor when the conversation reaches someone else.
    await desk.say(BOSS, f"/assign {wa_thread.number} @sam")
    assert offers(desk, SAM) == [sam_offer]
    await desk.say(BOSS, "/duplicates")
    assert desk.texts(BOSS)[-1] == "There are no open duplicates."


# -- who may decide -------------------------------------------------------------------------------


async def test_an_operator_of_neither_conversation_is_refused_and_nothing_changes(desk: Desk) -> None:
    wa_thread, tg_thread, duplicate = await ann_on_two_channels(desk, sam=False)
    assert (wa_thread.operator_id, tg_thread.operator_id) == (OLGA, OLGA)
    # Olga handles both conversations: she gets the offer once; Sam handles neither and gets nothing.
    assert [len(offers(desk, o)) for o in (OLGA, SAM, BOSS)] == [1, 0, 0]
    olga_offer = offers(desk, OLGA)[0]
    olga_before = desk.texts(OLGA)

    for data in (f"dup:m:{duplicate.id}:0", f"dup:n:{duplicate.id}"):
        await press_as(desk, SAM, OLGA, olga_offer, data)
        answer = desk.tg.callback_answers[-1]
        assert (answer.text, answer.show_alert) == (NOT_ALLOWED_RU, True)

    assert desk.texts(OLGA) == olga_before and desk.tg.edits(OLGA) == []
    assert "reply_markup" in current(desk, OLGA, olga_offer)
    assert (await desk.store.duplicates.get(duplicate.id)).status is DuplicateStatus.OPEN
    assert len(await live_cards(desk)) == 2 and await desk.store.merges.collection.count_documents({}) == 0
    # Olga, whose conversations they are, still decides.
    await desk.press(OLGA, olga_offer.message_id, f"dup:n:{duplicate.id}")
    assert (await desk.store.duplicates.get(duplicate.id)).decided_by == OLGA


# -- /duplicates ----------------------------------------------------------------------------------


async def test_duplicates_lists_open_candidates_for_supervisors_and_later_operators_get_the_offer(desk: Desk) -> None:
    # Nobody is online: both conversations wait, and nobody is told about the duplicate yet.
    await writes(desk, from_whatsapp("SM1", "my order is late"))
    await writes(desk, telegram_share())
    wa_thread, tg_thread = await thread(desk, WHATSAPP), await thread(desk, TELEGRAM)
    wa, tg = wa_thread.number, tg_thread.number
    duplicate = (await desk.store.duplicates.pending())[0]
    assert [offers(desk, o) for o in (OLGA, SAM, BOSS)] == [[], [], []]

    await desk.say(OLGA, "/duplicates")
    assert desk.texts(OLGA)[-1] == "/duplicates is for supervisors only."
    await desk.say(SAM, "/duplicates")
    assert desk.texts(SAM)[-1] == "/duplicates — команда только для супервизоров."
    await desk.say(BOSS, "/duplicates")
    title, item = desk.chat(BOSS)[-2:]
    assert title.text == "Possible duplicates, strongest first: 1"
    assert item.text == (f"🔁 #{wa} · Ann · WhatsApp {PRETTY}\n↔ #{tg} · Ann Lee · Telegram\n{REASON}")
    assert buttons(item)[:2] == [f"dup:m:{duplicate.id}:0", f"dup:n:{duplicate.id}"]

    # Olga comes online and takes both conversations: the offer comes with them, once.
    await desk.online(OLGA)
    assert {(await thread(desk, r)).operator_id for r in (WHATSAPP, TELEGRAM)} == {OLGA}
    assert len(offers(desk, OLGA)) == 1

    await desk.press(BOSS, item.message_id, f"dup:m:{duplicate.id}:0")
    assert current(desk, BOSS, item)["text"].endswith(
        "\n\n✅ Merged (merge #1): Ann Lee is now part of Ann. A supervisor can undo it with /unmerge 1."
    )
    assert len(await live_cards(desk)) == 1
    assert (
        f"🔗 #{wa}: Ann Lee and Ann are one customer card now (merge #1). "
        f"Their conversation #{tg} was joined into this one."
    ) in desk.texts(OLGA)
    await desk.say(BOSS, "/duplicates")
    assert desk.texts(BOSS)[-1] == "There are no open duplicates."


# -- /merge and /unmerge --------------------------------------------------------------------------


async def test_merge_command_checks_who_asks_and_repeats_answer_clearly(desk: Desk) -> None:
    wa_thread, tg_thread, _ = await ann_on_two_channels(desk)
    wa, tg = wa_thread.number, tg_thread.number
    await desk.say(BOSS, f"/operator add {EVE} Eve @eve")

    await desk.say(EVE, f"/merge {wa} {tg}")
    assert desk.texts(EVE)[-1] == (
        "Only a supervisor or the operator of one of these conversations can decide this. Nothing changed."
    )
    for text, answer in (
        (
            "/merge",
            "Формат: /merge 17 21 объединяет клиентов #17 и #21 и оставляет более старую карточку; "
            "/merge 17 21 21 оставляет карточку #21.",
        ),
        (
            f"/merge {wa} x",
            "Формат: /merge 17 21 объединяет клиентов #17 и #21 и оставляет более старую "
            "карточку; /merge 17 21 21 оставляет карточку #21.",
        ),
        (f"/merge {wa} 999", "Диалога #999 нет."),
        (f"/merge {wa} {tg} 999", f"#999 — не #{wa} и не #{tg}. Ничего не изменено."),
        (f"/merge {wa} {wa}", "Это одна и та же карточка, объединять нечего."),
    ):
        await desk.say(SAM, text)
        assert desk.texts(SAM)[-1] == answer, text
    assert len(await live_cards(desk)) == 2

    before = len(desk.chat(SAM))
    await desk.say(SAM, f"/merge #{wa} {tg}")  # Sam handles #tg
    # The answer, and (in either order) the news that his conversation now goes on in Olga's.
    assert sorted(desk.texts(SAM)[before:]) == sorted(
        [
            "✅ Объединено (объединение #1): Ann Lee теперь часть карточки Ann. Супервизор может отменить это "
            "командой /unmerge 1.",
            f"🔗 Ваш диалог #{tg} присоединён к #{wa}: клиенты объединены (объединение #1). Теперь его ведёт Olga.",
        ]
    )
    assert [c["_id"] for c in await live_cards(desk)] == [(await card(desk, WHATSAPP)).id]
    await desk.say(SAM, f"/merge {wa} {tg}")
    assert desk.texts(SAM)[-1] == f"#{wa} и #{tg} — уже один клиент. Ничего не изменено."
    await desk.say(BOSS, f"/merge {tg} {wa} {tg}")
    assert desk.texts(BOSS)[-1] == f"#{tg} and #{wa} are already one customer. Nothing changed."
    assert await desk.store.merges.collection.count_documents({}) == 1


async def test_unmerge_by_a_supervisor_restores_both_cards_and_tells_both_operators(desk: Desk) -> None:
    store = desk.store
    wa_thread, tg_thread, duplicate = await ann_on_two_channels(desk)
    wa, tg = wa_thread.number, tg_thread.number
    wa_card, tg_card = await card(desk, WHATSAPP), await card(desk, TELEGRAM)
    await desk.press(OLGA, offers(desk, OLGA)[0].message_id, f"dup:m:{duplicate.id}:0")
    assert len(await live_cards(desk)) == 1

    await desk.say(OLGA, "/unmerge 1")
    assert desk.texts(OLGA)[-1] == "/unmerge is for supervisors only."
    await desk.say(BOSS, "/unmerge")
    assert desk.texts(BOSS)[-1] == "Usage: /unmerge 3, with the merge number from the merge message."
    await desk.say(BOSS, "/unmerge 9")
    assert desk.texts(BOSS)[-1] == "There is no merge #9."
    assert len(await live_cards(desk)) == 1

    await desk.say(BOSS, "/unmerge #1")
    assert desk.texts(BOSS)[-1] == "✅ Merge #1 undone: Ann Lee and Ann are separate customers again."
    assert {c["_id"] for c in await live_cards(desk)} == {wa_card.id, tg_card.id}
    restored_wa, restored_tg = await store.contacts.get(wa_card.id), await store.contacts.get(tg_card.id)
    assert [i.key for i in restored_wa.identities] == [WHATSAPP.key]
    assert [i.key for i in restored_tg.identities] == [TELEGRAM.key]
    again_tg = await thread(desk, TELEGRAM)
    assert again_tg.id == tg_thread.id and again_tg.operator_id == SAM
    assert (await thread(desk, WHATSAPP)).operator_id == OLGA
    assert desk.texts(OLGA)[-1] == (
        f"↩️ Merge #1 was undone: Ann Lee (#{tg}) and Ann (#{wa}) are separate customers again."
    )
    assert f"↩️ Объединение #1 отменено: Ann Lee (#{tg}) и Ann (#{wa}) снова разные клиенты." in desk.texts(SAM)
    await desk.say(BOSS, "/unmerge 1")
    assert desk.texts(BOSS)[-1] == "Merge #1 was already undone. Nothing changed."
    # The pair is decided now: it is not offered again.
    assert (await store.duplicates.get(duplicate.id)).status is DuplicateStatus.DISMISSED
    assert [len(offers(desk, o)) for o in (OLGA, SAM)] == [1, 1]


def test_english_and_russian_texts_have_the_same_keys_and_placeholders() -> None:
    english, russian = duplicate_texts.TEXTS["en"], duplicate_texts.TEXTS["ru"]
    assert english.keys() == russian.keys()
    for key in english:
        assert _fields(english[key]) == _fields(russian[key]), key
    assert all(key in CATALOG["ru"] for key in english)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


async def test_a_phone_typed_in_the_widget_is_unverified_and_never_opens_anyones_history(
    open_desk: OpenDesk,
) -> None:
    desk = await open_desk(contacts={"auto_merge_verified": True})
    await desk.online(OLGA, SAM)
    await writes(desk, from_whatsapp("SM1", "my card number is on the invoice"))  # Ann, phone verified
    wa_thread = await thread(desk, WHATSAPP)
    reply_to_ann = desk.tg.text_update(OPERATOR_BOT, wa_thread.operator_id or OLGA, "Here is your refund link")
    copy = next(m for m in desk.chat(wa_thread.operator_id or OLGA) if "invoice" in (m.text or ""))
    reply_to_ann["message"]["reply_to_message"] = {"message_id": copy.message_id, "chat": {"id": copy.chat_id,
                                                   "type": "private"}, "date": 0}  # fmt: skip
    await desk.send(reply_to_ann)

    # Someone on the website types Ann's phone.
    visitor = await desk.visitor("hi, I am Ann", "v-1")
    await visitor.ws.send_json({"type": "identify", "name": "Ann", "phone": PHONE})
    [duplicate] = await eventually(desk.store.duplicates.pending, "the typed phone makes a duplicate")
    await settle(desk.app)
    assert duplicate.matches[0].unverified and not duplicate.matches[0].verified
    assert "(unverified: typed in the widget)" in duplicate.reason
    assert all(c["merged_into"] is None for c in await live_cards(desk))  # auto_merge_verified never used it
    assert any("unverified: typed in the widget" in text for op in (OLGA, SAM) for text in desk.texts(op))
    widget_card = next(c for c in await live_cards(desk) if any(i["channel"] == "webwidget" for i in c["identities"]))
    assert widget_card["unverified"] == [PHONE]

    # Even merged by an operator, the visitor's own history stays theirs.
    await desk.app[MERGER].merge_duplicate(duplicate.id, by=BOSS)
    await settle(desk.app)
    again = await Widget.connect(desk.client, visitor.token)
    texts = [m["text"] for m in again.history]
    assert texts == ["hi, I am Ann"]
