"""What widget visitors do besides writing reaches their operator compactly: pages, identity, typing, leaving."""

from __future__ import annotations

import asyncio

from tests.helpers import Widget, eventually, settle
from tests.operators.conftest import OLGA, OPERATOR_BOT, Desk, OpenDesk


async def frame(desk: Desk, widget: Widget, **data: str) -> None:
    await widget.ws.send_json(data)
    await widget.ws.send_json({"type": "ping-after"})  # answered by an error frame: the first is handled
    await widget.expect("error")
    await settle(desk.app)


def current(desk: Desk, message_id: int) -> str:
    message = desk.tg.message(OPERATOR_BOT, OLGA, message_id)
    assert message is not None
    return message["text"]


async def test_navigation_is_one_line_per_half_minute_edited_as_the_visitor_moves_on(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Which plan suits me?", "c-1")
    before = len(desk.chat(OLGA))
    await frame(desk, widget, type="page", url="https://shop.example/plans/pro", title="Pro plan")
    await frame(desk, widget, type="page", url="https://shop.example/checkout", title="Checkout")
    await frame(desk, widget, type="page", url="https://shop.example/checkout", title="Checkout")  # a reload
    lines = desk.chat(OLGA)[before:]
    assert [m.text for m in lines] == ["🧭 #1 · on Pro plan (https://shop.example/plans/pro)"]
    assert current(desk, lines[0].message_id) == (
        "🧭 #1 · on Checkout (https://shop.example/checkout) (before: Pro plan (https://shop.example/plans/pro))"
    )
    # A reply to the navigation line answers the visitor.
    await desk.say(OLGA, "Pro is the one", reply_to=lines[0].message_id)
    assert (await widget.expect("message"))["text"] == "Pro is the one"


async def test_what_a_visitor_says_about_themselves_is_shown_as_unverified(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Hello", "c-1")
    await frame(desk, widget, type="identify", name="Ann Lee", email="ann@example.com")
    await frame(desk, widget, type="identify", name="Ann Lee", email="ann@example.com")  # nothing new
    said = [t for t in desk.texts(OLGA) if t.startswith("🪪")]
    assert said == ["🪪 #1 · the visitor says they are Ann Lee, ann@example.com (unverified)"]


async def test_visitor_typing_shows_as_typing_in_the_operator_chat(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Hello", "c-1")
    await frame(desk, widget, type="typing")
    await frame(desk, widget, type="typing")  # within Telegram's five seconds of "typing…"
    actions = desk.tg.calls("sendChatAction")
    assert [(c.params["chat_id"], c.params["action"]) for c in actions] == [(OLGA, "typing")]


async def test_an_operator_reply_shows_them_typing_in_the_widget_first(desk: Desk) -> None:
    await desk.online(OLGA)
    widget = await desk.visitor("Hello", "c-1")
    await desk.say(OLGA, "Hi, how can I help?")
    frames = await widget.frames_until("message")
    assert [f["type"] for f in frames][-2:] == ["typing", "message"]


async def test_a_visitor_whose_last_window_closed_has_left_and_chats_says_so(open_desk: OpenDesk) -> None:
    desk = await open_desk(webwidget={"left_after_seconds": 0.2})
    await desk.online(OLGA)
    first = await desk.visitor("Hello", "c-1")
    second = await Widget.connect(desk.client, first.token)  # a second tab
    await first.ws.close()
    await asyncio.sleep(0.4)
    await settle(desk.app)
    assert not any("left the website" in t for t in desk.texts(OLGA))  # one tab is still open

    await second.ws.close()

    async def told() -> bool:
        await settle(desk.app)
        return any("left the website" in t for t in desk.texts(OLGA))

    await eventually(told, "the operator is told the visitor left")
    assert desk.texts(OLGA).count("🚪 #1 · the visitor left the website") == 1
    await desk.say(OLGA, "/chats")
    assert "🚪 left the website" in desk.texts(OLGA)[-1]

    again = await Widget.connect(desk.client, first.token)
    await frame(desk, again, type="ping-after")
    assert desk.texts(OLGA)[-1] == "🔙 #1 · the visitor is back on the website"
    await desk.say(OLGA, "/chats")
    assert "left the website" not in desk.texts(OLGA)[-1]
    await again.ws.close()
