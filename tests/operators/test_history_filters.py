"""/history N with a filter: only that type of message (or the visitor's pages), paged as without one."""

from __future__ import annotations

from tests.helpers import settle
from tests.operators.conftest import ANN_TG, CUSTOMER_BOT, OLGA, OPERATOR_BOT, Desk, from_telegram


async def history(desk: Desk, command: str) -> str:
    before = len(desk.chat(OLGA))
    await desk.say(OLGA, command)
    return "\n".join(m.text or "" for m in desk.chat(OLGA)[before:])


async def test_history_shows_only_the_type_asked_for(everywhere: Desk) -> None:
    desk = everywhere
    await desk.online(OLGA)
    await from_telegram(desk, desk.tg.text_update(CUSTOMER_BOT, ANN_TG, "The lid is cracked"))
    await from_telegram(desk, desk.tg.photo_update(CUSTOMER_BOT, ANN_TG, caption="photo of the lid"))
    await from_telegram(desk, desk.tg.document_update(CUSTOMER_BOT, ANN_TG, file_name="receipt.pdf"))
    await desk.say(OLGA, "Sorry about that, a new one is on its way")
    number = (await desk.store.threads.find(operator_id=OLGA, limit=1))[0].number

    media = await history(desk, f"/history {number} media")
    assert "photo of the lid" in media and "receipt.pdf" in media
    assert "The lid is cracked" not in media and "new one is on its way" not in media

    customer = await history(desk, f"/history {number} customer")
    assert "The lid is cracked" in customer and "new one is on its way" not in customer
    operator = await history(desk, f"/history {number} operator")
    assert "new one is on its way" in operator and "The lid is cracked" not in operator
    assert "no history of this type (notes)" in await history(desk, f"/history {number} notes")
    everything = await history(desk, f"/history {number}")
    assert "The lid is cracked" in everything and "new one is on its way" in everything
    assert "filters: customer | operator | notes | actions | media | pages" in await history(
        desk, f"/history {number} videos"
    )


async def test_history_pages_shows_the_visitors_navigation_and_pages_with_the_filter(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Which size fits me?")
    for n in range(12):
        await widget.ws.send_json({"type": "page", "url": f"https://shop.example/p/{n}", "title": f"Product {n}"})
    await widget.say("Still there?", "c-2")
    await settle(desk.app)
    number = (await desk.store.threads.find(operator_id=OLGA, limit=1))[0].number

    await desk.say(OLGA, f"/history {number} pages")
    first = desk.chat(OLGA)[-1]
    assert "https://shop.example/p/11 — Product 11" in first.text and "Which size" not in first.text
    assert "https://shop.example/p/1 " not in first.text + " "  # older pages are on the next page
    [[older]] = first.reply_markup["inline_keyboard"]
    assert older["callback_data"] == f"hist:{number}:2:pages"
    await desk.press(OLGA, first.message_id, older["callback_data"])
    edited = desk.tg.message(OPERATOR_BOT, OLGA, first.message_id)["text"]  # the page is replaced in place
    assert "page 2/2" in edited and "https://shop.example/p/0 — Product 0" in edited and "p/11" not in edited
    await widget.close()
