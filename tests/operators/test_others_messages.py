"""Whatever someone else sends into an operator's conversation shows in the operator's chat, with its author."""

from __future__ import annotations

from tests.helpers import AUTH, settle
from tests.operators.conftest import ANN_TG, BOSS, CUSTOMER_BOT, OLGA, Desk, from_telegram


async def number_of(desk: Desk, text: str) -> int:
    stored = await desk.store.messages.collection.find_one({"text": text})
    return (await desk.store.threads.get(stored["thread_id"])).number


async def test_an_api_reply_appears_in_the_operators_chat(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Was my refund approved?"))
    number = await number_of(desk, "Was my refund approved?")

    answer = await desk.client.post(
        f"/api/v1/threads/{number}/messages", json={"text": "Yes, 20 EUR are on their way.", "author_name": "CRM"}
    )
    assert answer.status == 401  # nothing without the token
    answer = await desk.client.post(
        f"/api/v1/threads/{number}/messages",
        json={"text": "Yes, 20 EUR are on their way.", "author_name": "CRM"},
        headers=AUTH,
    )
    assert answer.status == 201
    await settle(desk.app)

    assert [m.text for m in desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)] == ["Yes, 20 EUR are on their way."]
    shown = desk.chat(OLGA)[-1]
    assert shown.text == f"#{number} · → CRM (API): Yes, 20 EUR are on their way."
    assert desk.texts(OLGA).count(shown.text) == 1
    # It is a message of the conversation like any other: a reply to it reaches the customer.
    await desk.say(OLGA, "Anything else?", reply_to=shown.message_id)
    assert desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)[-1].text == "Anything else?"


async def test_another_operators_reply_appears_in_the_owners_chat_once(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "Can I pay by invoice?"))
    number = await number_of(desk, "Can I pay by invoice?")

    await desk.say(BOSS, f"/chat {number}")
    boss_chat = len(desk.chat(BOSS))
    await desk.say(BOSS, "Yes, for orders over 100 EUR.")

    assert desk.tg.sent(chat_id=ANN_TG, token=CUSTOMER_BOT)[-1].text == "Yes, for orders over 100 EUR."
    assert desk.texts(OLGA)[-1] == f"#{number} · → Boss: Yes, for orders over 100 EUR."
    assert len(desk.chat(BOSS)) == boss_chat  # the author is not shown their own message again
    # Olga's own replies are not echoed back to her.
    await desk.say(OLGA, "Boss is right.")
    assert desk.texts(OLGA)[-1] == f"#{number} · → Boss: Yes, for orders over 100 EUR."
