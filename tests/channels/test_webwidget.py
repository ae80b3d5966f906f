"""The web widget channel over a real WebSocket against the real app."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.keys import STORE
from gateway.tokens import VisitorTokens
from tests.helpers import AUTH, WIDGET_SECRET, Widget, settle

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


async def test_conversation_hello_message_ack_and_operator_reply(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    assert widget.token and widget.history == []

    ack = await widget.say("Hello, is the blue one in stock?", "c-1")
    assert ack["client_id"] == "c-1" and ack["id"]

    threads = (await (await gateway.get("/api/v1/threads", headers=AUTH)).json())["threads"]
    assert len(threads) == 1 and threads[0]["channel"] == "webwidget" and threads[0]["status"] == "queued"
    number = threads[0]["number"]
    messages = (await (await gateway.get(f"/api/v1/threads/{number}/messages", headers=AUTH)).json())["messages"]
    assert [(m["direction"], m["text"]) for m in messages] == [("in", "Hello, is the blue one in stock?")]

    reply = await gateway.post(
        f"/api/v1/threads/{number}/messages",
        headers=AUTH,
        json={"text": "Yes, we have three left.", "author_name": "Maria"},
    )
    assert reply.status == 201
    body = await reply.json()
    pushed = await widget.expect("message")
    assert pushed["text"] == "Yes, we have three left."
    assert pushed["author"] == {"type": "operator", "name": "Maria"}
    assert pushed["id"] == body["id"]
    assert body["status"] == "delivered"
    await widget.close()


async def test_reconnect_with_token_restores_history(gateway: TestClient) -> None:
    first = await Widget.connect(gateway)
    await first.say("first question", "c-1")
    number = (await (await gateway.get("/api/v1/threads", headers=AUTH)).json())["threads"][0]["number"]
    await gateway.post(f"/api/v1/threads/{number}/messages", headers=AUTH, json={"text": "an answer"})
    await first.close()

    again = await Widget.connect(gateway, token=first.token)
    assert again.token == first.token
    assert [(m["author"]["type"], m["text"]) for m in again.history] == [
        ("visitor", "first question"),
        ("operator", "an answer"),
    ]
    assert again.history[0]["client_id"] == "c-1"


async def test_resent_message_after_reconnect_is_stored_once(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    first = await widget.say("did this arrive?", "c-42")
    await widget.close()
    again = await Widget.connect(gateway, token=widget.token)
    second = await again.say("did this arrive?", "c-42")
    assert first["id"] == second["id"]
    assert await gateway.app[STORE].messages.collection.count_documents({}) == 1


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        VisitorTokens("a-different-server-secret-xyz").issue()[0],  # signed by someone else
    ],
)
async def test_forged_or_foreign_token_gets_a_fresh_identity(gateway: TestClient, token: str) -> None:
    victim = await Widget.connect(gateway)
    await victim.say("my private order details", "c-1")

    intruder = await Widget.connect(gateway, token=token)
    assert intruder.token not in (token, victim.token)
    assert intruder.history == []


async def test_tampered_token_cannot_read_another_visitor(gateway: TestClient) -> None:
    victim = await Widget.connect(gateway)
    await victim.say("secret", "c-1")
    payload, mac = victim.token.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    intruder = await Widget.connect(gateway, token=forged)
    assert intruder.history == [] and intruder.token != victim.token


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "launch_rockets"}', "unknown_type"),
        ('{"type": "message", "client_id": "x"}', "bad_frame"),
        ('{"type": "message", "text": "   ", "client_id": "x"}', "bad_frame"),
        ('{"type": "message", "text": "hi"}', "bad_frame"),
        ('{"type": "page"}', "bad_frame"),
        ('{"type": "identify", "email": "not-an-email"}', "invalid_email"),
        ('{"type": "hello", "page": {"url": "https://shop.example/"}}', "bad_state"),
    ],
)
async def test_bad_frame_gets_error_changes_nothing_and_socket_stays_open(
    gateway: TestClient, frame: str, code: str
) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_str(frame)
    error = await widget.expect("error")
    assert error["code"] == code and error["message"]
    store = gateway.app[STORE]
    assert await store.messages.collection.count_documents({}) == 0
    assert await store.contacts.collection.count_documents({}) == 0
    assert (await widget.say("still here", "c-2"))["client_id"] == "c-2"


async def test_frames_before_hello_are_refused(gateway: TestClient) -> None:
    ws = await gateway.ws_connect("/channels/webwidget/ws")
    await ws.send_json({"type": "message", "text": "hi", "client_id": "c"})
    assert (await ws.receive_json())["code"] == "hello_required"
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json())["code"] == "bad_frame"
    assert await gateway.app[STORE].messages.collection.count_documents({}) == 0
    await ws.close()


async def test_oversized_frame_and_text_are_refused(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"max_frame_bytes": 512, "max_text_length": 100})))
    widget = await Widget.connect(client)
    await widget.ws.send_json({"type": "message", "text": "x" * 600, "client_id": "big"})
    assert (await widget.expect("error"))["code"] == "too_large"
    await widget.ws.send_json({"type": "message", "text": "y" * 101, "client_id": "long"})
    error = await widget.expect("error")
    assert error["code"] == "too_large" and error["client_id"] == "long"
    assert await client.app[STORE].messages.collection.count_documents({}) == 0


async def test_rate_limit(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"messages_per_minute": 3})))
    widget = await Widget.connect(client)
    for n in range(3):
        await widget.say(f"message {n}", f"c-{n}")
    await widget.ws.send_json({"type": "message", "text": "one too many", "client_id": "c-3"})
    error = await widget.expect("error")
    assert error == {"type": "error", "code": "rate_limited", "message": error["message"], "client_id": "c-3"}
    assert await client.app[STORE].messages.collection.count_documents({}) == 3


async def test_origin_not_allowed_is_closed_with_4003(gateway: TestClient) -> None:
    ws = await gateway.ws_connect("/channels/webwidget/ws", headers={"Origin": "https://evil.example"})
    assert (await ws.receive_json())["code"] == "forbidden_origin"
    closing = await ws.receive()
    assert closing.type is WSMsgType.CLOSE and closing.data == 4003


async def test_visitor_info_identify_and_navigation_are_stored(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(server={"trusted_proxies": ["127.0.0.0/8"]})))
    headers = {"Origin": "https://shop.example", "User-Agent": CHROME_UA, "X-Forwarded-For": "198.51.100.7, 10.9.8.7"}
    widget = await Widget.connect(client, headers=headers, language="de-DE")
    await widget.say("hello", "c-1")
    await widget.ws.send_json({"type": "page", "url": "https://shop.example/checkout", "title": "Checkout"})
    await widget.ws.send_json(
        {"type": "identify", "name": "Ann Lee", "email": " Ann@Example.COM ", "phone": "+1 (415) 555-2671"}
    )
    await widget.say("sync point", "c-2")

    contact = (await client.app[STORE].contacts.collection.find().to_list())[0]
    visitor = contact["visitor"]
    assert visitor["browser"] == "Chrome 120" and visitor["os"] == "Windows 10"
    # 10.9.8.7 is not a trusted proxy, so it is the client as far as we can tell.
    assert visitor["ip"] == "10.9.8.7"
    assert visitor["language"] == "de-DE" and visitor["referrer"] == "https://search.example/"
    assert visitor["url"] == "https://shop.example/checkout" and visitor["title"] == "Checkout"
    assert [p["url"] for p in visitor["pages"]] == ["https://shop.example/pricing", "https://shop.example/checkout"]
    assert contact["name"] == "Ann Lee"
    assert contact["emails"] == ["ann@example.com"]
    assert contact["phones"] == ["+14155552671"]
    assert contact["language"] == "de-DE"


async def test_forwarded_for_is_ignored_from_untrusted_peers(gateway: TestClient) -> None:
    headers = {"Origin": "https://shop.example", "X-Forwarded-For": "203.0.113.9"}
    widget = await Widget.connect(gateway, headers=headers)
    await widget.say("hello", "c-1")
    contact = await gateway.app[STORE].contacts.collection.find_one()
    assert contact["visitor"]["ip"] == "127.0.0.1"


async def test_identify_before_any_message_creates_the_contact(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_json({"type": "identify", "name": "Lead Person", "email": "lead@example.com"})
    await widget.ws.send_json({"type": "page", "url": "https://shop.example/after"})  # ordered after identify
    await widget.ws.send_json({"type": "typing"})
    await widget.say("now a question", "c-1")
    contacts = await gateway.app[STORE].contacts.collection.find().to_list()
    assert len(contacts) == 1 and contacts[0]["name"] == "Lead Person"
    assert contacts[0]["emails"] == ["lead@example.com"]


async def test_reply_reaches_every_tab_and_only_that_visitor(gateway: TestClient) -> None:
    tab1 = await Widget.connect(gateway)
    await tab1.say("question from tab 1", "c-1")
    tab2 = await Widget.connect(gateway, token=tab1.token)
    stranger = await Widget.connect(gateway)
    await stranger.say("unrelated", "s-1")
    await settle(gateway.app)

    visitor = VisitorTokens(WIDGET_SECRET).identity(tab1.token)
    contact = await gateway.app[STORE].contacts.by_identity(visitor.key)
    thread = await gateway.app[STORE].threads.open_for(contact.id)
    await gateway.post(f"/api/v1/threads/{thread.number}/messages", headers=AUTH, json={"text": "for you"})
    assert (await tab1.expect("message"))["text"] == "for you"
    assert (await tab2.expect("message"))["text"] == "for you"
    # Anything pushed to the stranger would arrive before the ack of their next message.
    await stranger.ws.send_json({"type": "message", "text": "sync", "client_id": "s-2"})
    assert [f["type"] for f in await stranger.frames_until("ack")] == ["ack"]
