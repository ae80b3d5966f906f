"""Texts longer than a platform takes arrive whole, in tagged parts, in both directions."""

from __future__ import annotations

import re

from gateway.splitter import utf16_len
from tests.emulators.twilio import SAMPLE_JPEG, TwilioEmulator
from tests.helpers import AUTH, settle
from tests.operators.conftest import (
    ANN_TG,
    BOB_WA,
    CUSTOMER_BOT,
    OLGA,
    OPERATOR_BOT,
    Desk,
    from_telegram,
    from_whatsapp,
)

TAG = re.compile(r"^#(\d+) \((\d+)/(\d+)\) · ")


def words(units: int, word: str = "parcel") -> str:
    """Words (with an emoji now and then) of exactly `units` UTF-16 code units."""
    text = ""
    i = 0
    while utf16_len(text) < units - 20:
        text += f"{word}{i} " if i % 7 else "📦 "
        i += 1
    return text + "x" * (units - utf16_len(text))


def untagged(texts: list[str]) -> tuple[list[tuple[int, int]], str]:
    """The (part, of) of each tagged text, and their bodies joined (a cut loses only whitespace)."""
    tags, bodies = [], []
    for text in texts:
        match = TAG.match(text)
        assert match is not None, text[:40]
        tags.append((int(match[2]), int(match[3])))
        bodies.append(text[match.end() :])
    return tags, " ".join(bodies)


def squeezed(text: str) -> str:
    return " ".join(text.split())


async def number_of(desk: Desk, text: str) -> int:
    stored = await desk.store.messages.collection.find_one({"text": text})
    thread = await desk.store.threads.get(stored["thread_id"])
    return thread.number


async def test_a_4096_character_telegram_message_reaches_the_operator_whole_in_tagged_parts(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    long = words(4096)
    assert utf16_len(long) == 4096
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, long))

    number = await number_of(desk, long)
    shown = [m for m in desk.chat(OLGA) if (m.text or "").startswith(f"#{number} (")]
    tags, body = untagged([m.text for m in shown])
    assert tags == [(1, 2), (2, 2)]
    assert squeezed(body) == squeezed(long)
    assert all(utf16_len(m.text) <= 4096 for m in shown)

    # A reply to any part reaches the customer.
    await desk.say(OLGA, "Read it all, thanks.", reply_to=shown[1].message_id)
    assert [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)] == ["Read it all, thanks."]


async def test_a_long_whatsapp_message_reaches_the_operator_whole(everywhere: Desk, twilio: TwilioEmulator) -> None:
    desk = everywhere
    await desk.online(OLGA)
    medium, long = words(1700, "box"), words(4500, "crate")
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, medium, profile_name="Bob"))
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, long, profile_name="Bob"))

    number = await number_of(desk, medium)
    assert f"#{number} · {medium}" in desk.texts(OLGA)
    tags, body = untagged([t for t in desk.texts(OLGA) if t.startswith(f"#{number} (")])
    assert tags == [(1, 2), (2, 2)] and squeezed(body) == squeezed(long)


async def test_a_long_operator_reply_reaches_a_whatsapp_customer_in_parts(
    everywhere: Desk, twilio: TwilioEmulator
) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_whatsapp(desk, twilio, twilio.inbound_text(BOB_WA, "Tell me everything", profile_name="Bob"))
    reply = words(3500, "step")
    await desk.say(OLGA, reply)

    bodies = [m.body for m in twilio.messages]
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies)
    assert squeezed(" ".join(bodies)) == squeezed(reply)
    stored = await desk.store.messages.collection.find_one({"text": reply})
    assert stored["status"] == "sent"


async def test_an_api_reply_too_long_for_telegram_reaches_the_customer_in_parts(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Terms, please"))
    number = await number_of(desk, "Terms, please")
    terms = ("📜 " * 1500 + "end")[:4096]  # 4,096 characters, many more UTF-16 code units
    assert utf16_len(terms) > 4096
    answer = await desk.client.post(f"/api/v1/threads/{number}/messages", json={"text": terms}, headers=AUTH)
    assert answer.status < 300
    await settle(desk.app)

    sent = [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)]
    assert len(sent) == 2 and all(utf16_len(s) <= 4096 for s in sent)
    assert squeezed(" ".join(sent)) == squeezed(terms)


async def test_a_caption_too_long_for_telegram_follows_its_file_whole(everywhere: Desk, twilio: TwilioEmulator) -> None:
    desk = everywhere
    await desk.online(OLGA)
    caption = words(1020, "scratch")  # fits Telegram, not with the #N tag
    photo = b"\xff\xd8\xff\xe0" + b"broken-box" * 40
    await from_telegram(desk, desk.tg.photo_update(CUSTOMER_BOT, ANN_TG, photo, caption=caption))
    await from_whatsapp(desk, twilio, twilio.inbound_image(BOB_WA, SAMPLE_JPEG, caption=words(1500, "receipt")))

    ann, bob = desk.tg.sent(chat_id=OLGA, method="sendPhoto", token=OPERATOR_BOT)
    number = await number_of(desk, caption)
    assert ann.file.data == photo and ann.caption == f"#{number}"
    assert f"#{number} · {caption}" in desk.texts(OLGA)
    assert bob.file.data == SAMPLE_JPEG and re.fullmatch(r"#\d+", bob.caption)
    assert any(t.endswith(words(1500, "receipt")) for t in desk.texts(OLGA))


async def test_a_history_page_too_long_for_one_message_comes_in_several(desk: Desk) -> None:
    await desk.online(OLGA)
    sent = [words(900, f"line{i}-") for i in range(8)]
    ann = await desk.visitor(sent[0], "h-0")
    for i, text in enumerate(sent[1:], 1):
        await ann.say(text, f"h-{i}")
    await settle(desk.app)
    number = await number_of(desk, sent[0])

    before = len(desk.chat(OLGA))
    await desk.say(OLGA, f"/history {number}")
    pages = desk.chat(OLGA)[before:]
    assert len(pages) == 2 and all(utf16_len(p.text) <= 4096 for p in pages)
    joined = "\n".join(p.text for p in pages)
    assert all(text in joined for text in sent)  # each message whole, in one part
    assert pages[0].text.startswith("History of Visitor, page 1/1")


async def test_an_operator_caption_too_long_for_the_customers_file_follows_it_whole(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "The contract, please"))
    terms = words(2000, "clause")
    await desk.say(OLGA, f"/canned add terms {terms}")
    update = desk.tg.document_update(
        OPERATOR_BOT, OLGA, b"%PDF-1.4 contract", file_name="contract.pdf", caption="!terms"
    )
    assert await desk.send(update) == 200

    [document] = desk.tg.sent(chat_id=ANN_TG, method="sendDocument", token=CUSTOMER_BOT)
    assert document.file.data == b"%PDF-1.4 contract" and document.caption is None
    [text] = desk.tg.sent(chat_id=ANN_TG, method="sendMessage", token=CUSTOMER_BOT)
    assert text.text == terms.strip()
