"""Translation against an emulator of the LibreTranslate API: customer messages shown translated to the operator,
/tr replies sent in the customer's language; a failing translator holds nothing back; no [translation], no calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.model import Direction
from tests.emulators.libretranslate import LibreTranslateEmulator
from tests.emulators.telegram import TelegramEmulator
from tests.operators.conftest import ANN_TG, CUSTOMER_BOT, OLGA, Desk, OpenDesk, from_telegram

KEY = "libre-key-for-tests"


@pytest.fixture
async def libre() -> AsyncIterator[LibreTranslateEmulator]:
    async with LibreTranslateEmulator(api_key=KEY) as emulator:
        emulator.learn("es", "en", "¿Dónde está mi pedido?", "Where is my order?")
        emulator.learn("en", "es", "It arrives tomorrow.", "Llega mañana.")
        yield emulator


def customer_bot(tg: TelegramEmulator) -> dict[str, Any]:
    tg.add_bot(CUSTOMER_BOT, "shop_support_bot", first_name="Shop")
    tg.user(ANN_TG, "Ann", "Lee", username="annlee")
    return {
        "api_base": tg.base_url,
        "bots": [{"name": "support", "token": CUSTOMER_BOT, "webhook_secret": "customer-secret"}],
    }


@pytest.fixture
async def translating(open_desk: OpenDesk, tg: TelegramEmulator, libre: LibreTranslateEmulator) -> Desk:
    return await open_desk(
        telegram=customer_bot(tg), translation={"url": libre.base_url, "api_key": KEY, "timeout_seconds": 0.5}
    )


def to_ann(desk: Desk) -> list[str]:
    return [m.text or "" for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)]


async def test_a_spanish_customer_is_shown_translated_and_answered_in_spanish(
    translating: Desk, libre: LibreTranslateEmulator
) -> None:
    desk = translating
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "¿Dónde está mi pedido?"))
    chat = desk.chat(OLGA)
    original = next(m for m in chat if (m.text or "").endswith("¿Dónde está mi pedido?"))
    translation = next(m for m in chat if "🌐" in (m.text or ""))
    assert translation.text == "#1 🌐 es → en: Where is my order?"
    assert translation.reply_to_message_id == original.message_id  # shown under the message it translates
    assert all(call.body["api_key"] == KEY for call in libre.calls)

    # Nothing to translate in an emoji, and it says nothing of her language.
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "👍"))
    assert sum("🌐" in text for text in desk.texts(OLGA)) == 1

    await desk.say(OLGA, "/tr 1 It arrives tomorrow.")
    assert to_ann(desk) == ["Llega mañana."]
    assert desk.texts(OLGA)[-1] == "Sent to #1 in es: Llega mañana."
    # A message in the operator's own language is shown as it is.
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Thanks a lot"))
    assert sum("🌐" in text for text in desk.texts(OLGA)) == 1
    notes = await desk.store.messages.collection.find({"direction": Direction.INTERNAL.value}).to_list()
    assert any("It arrives tomorrow." in n["text"] for n in notes)  # the original, kept as a note
    stored = await desk.store.messages.collection.find_one({"text": "¿Dónde está mi pedido?"})
    assert (stored["language"], stored["translation"]) == ("es", "Where is my order?")


async def test_a_failing_translator_holds_nothing_back(
    open_desk: OpenDesk, tg: TelegramEmulator, libre: LibreTranslateEmulator
) -> None:
    settings = {"url": libre.base_url, "api_key": KEY, "timeout_seconds": 0.5, "pause_seconds": 0}
    desk = await open_desk(telegram=customer_bot(tg), translation=settings)
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hola, quiero cambiar mi pedido"))
    libre.failing = True
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hola otra vez"))
    libre.failing, libre.stalling = False, True
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "¿Hola? por favor"))
    texts = desk.texts(OLGA)
    assert all(any(text.endswith(said) for text in texts) for said in ("Hola otra vez", "¿Hola? por favor"))
    assert [text for text in texts if "🌐" in text] == ["#1 🌐 es → en: [en] Hola, quiero cambiar mi pedido"]

    await desk.say(OLGA, "/tr 1 One moment please.")
    assert "could not translate the reply for #1: nothing was sent" in desk.texts(OLGA)[-1]
    assert to_ann(desk) == []
    libre.stalling = False
    await desk.say(OLGA, "/tr 1 One moment please.")
    assert to_ann(desk) == ["[es] One moment please."]


async def test_without_translation_nothing_is_called(
    open_desk: OpenDesk, tg: TelegramEmulator, libre: LibreTranslateEmulator
) -> None:
    desk = await open_desk(telegram=customer_bot(tg))
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "¿Dónde está mi pedido?"))
    await desk.say(OLGA, "/tr 1 It arrives tomorrow.")
    assert "Translation is not configured" in desk.texts(OLGA)[-1]
    assert not any("🌐" in text for text in desk.texts(OLGA))
    assert libre.calls == [] and to_ann(desk) == []


async def test_a_translator_that_is_down_is_left_alone_for_a_while(
    translating: Desk, libre: LibreTranslateEmulator
) -> None:
    desk = translating
    await desk.online(OLGA)
    libre.failing = True
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Hola"))
    calls = len(libre.calls)
    for text in ("¿Hola?", "Por favor", "Gracias"):
        await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, text))
    assert len(libre.calls) == calls == 1  # one failed call; the next messages do not wait for it again
    assert all(any(t.endswith(said) for t in desk.texts(OLGA)) for said in ("Hola", "¿Hola?", "Por favor", "Gracias"))
