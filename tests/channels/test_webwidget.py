"""The web widget channel over a real WebSocket against the real app."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from channels.webwidget.limits import RateLimit
from gateway.app import create_app
from gateway.keys import STORE
from gateway.tokens import Signer, VisitorTokens
from tests.helpers import AUTH, WIDGET_SECRET, Widget, eventually, settle

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


# -- hostile frames --------------------------------------------------------------------------------

NESTED = '{"type": "message", "text": "hi", "client_id": "c", "x": ' + "[" * 5 + "]" * 5 + "}"


@pytest.mark.parametrize(
    ("frame", "code", "echoed"),
    [
        pytest.param("[" * 10_000, "bad_json", False, id="deep-array"),
        pytest.param('{"a":' * 2_000 + "1" + "}" * 2_000, "bad_json", False, id="deep-object"),
        pytest.param(NESTED, "bad_json", False, id="nested-past-the-cap"),
        pytest.param('{"type": "typing"', "bad_json", False, id="truncated"),
        pytest.param('{"type": "message", "text": NaN, "client_id": "c"}', "bad_json", False, id="nan"),
        pytest.param('{"type": "message", "text": 1e999, "client_id": "c"}', "bad_json", False, id="infinity"),
        pytest.param('{"type": "typing", "n": ' + "9" * 5_000 + "}", "bad_json", False, id="int-too-long"),
        pytest.param('{"type": "message", "text": ' + "9" * 4_000 + ', "client_id": "c"}', "bad_frame", True),
        pytest.param("42", "bad_frame", False, id="number"),
        pytest.param('"hello"', "bad_frame", False, id="string"),
        pytest.param("null", "bad_frame", False, id="null"),
        pytest.param('{"type": 7}', "bad_frame", False, id="type-number"),
        pytest.param('{"type": ["message"]}', "bad_frame", False, id="type-list"),
        pytest.param('{"kind": "message"}', "bad_frame", False, id="no-type"),
        pytest.param('{"type": "message", "text": ["hi"], "client_id": "c"}', "bad_frame", True, id="text-list"),
        pytest.param('{"type": "message", "text": "hi", "client_id": 12}', "bad_frame", False, id="client-id-int"),
        pytest.param('{"type": "message", "text": "hi", "client_id": "' + "c" * 65 + '"}', "bad_frame", False),
        pytest.param('{"type": "message", "text": "a\\u0000b", "client_id": "c"}', "bad_text", True, id="nul-text"),
        pytest.param('{"type": "message", "text": "a\\ud800", "client_id": "c"}', "bad_text", True, id="lone-high"),
        pytest.param('{"type": "message", "text": "\\udfff b", "client_id": "c"}', "bad_text", True, id="lone-low"),
        pytest.param('{"type": "message", "text": "hi", "client_id": "c\\udfff"}', "bad_text", False),
        pytest.param('{"type": "page", "url": "https://shop.example/\\u0000"}', "bad_text", False, id="nul-url"),
        pytest.param('{"type": "page", "url": 5}', "bad_frame", False, id="url-number"),
        pytest.param('{"type": "page", "url": "https://shop.example/", "title": {"a": 1}}', "bad_frame", False),
        pytest.param('{"type": "identify", "name": "\\udc00"}', "bad_text", False, id="surrogate-name"),
        pytest.param('{"type": "identify", "name": 5}', "bad_frame", False, id="name-number"),
        pytest.param('{"type": "identify", "email": ["ann@example.com"]}', "bad_frame", False, id="email-list"),
        pytest.param('{"type": "identify", "phone": "+1 415 555 2671' + " 0" * 20 + '"}', "too_large", False),
        pytest.param('{"type": "identify", "email": "' + "a" * 250 + '@example.com"}', "invalid_email", False),
        pytest.param('{"type": "typing", "\\u0000": 1}', "bad_text", False, id="nul-in-key"),
        pytest.param('{"type": "typing", "$where.x": "\\ud800"}', "bad_text", False, id="surrogate-under-odd-key"),
        pytest.param('{"type": "typing", "x": ["\\ud800"]}', "bad_text", False, id="surrogate-in-list"),
        pytest.param('{"type": "\\ud800"}', "bad_text", False, id="surrogate-type"),
        pytest.param('{"type": "hello", "page": "https://shop.example/"}', "bad_state", False, id="second-hello"),
    ],
)
async def test_hostile_frame_gets_an_error_and_leaves_the_socket_usable(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, frame: str, code: str, echoed: bool
) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_str(frame)
    error = await widget.expect("error")
    assert error["code"] == code and error["message"]
    assert error.get("client_id") == ("c" if echoed else None)
    store = gateway.app[STORE]
    assert await store.messages.collection.count_documents({}) == 0
    assert await store.contacts.collection.count_documents({}) == 0
    assert (await widget.say("still here", "c-2"))["client_id"] == "c-2"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "hello",
    [
        pytest.param({"page": "https://shop.example/"}, id="page-not-object"),
        pytest.param({"page": {"url": 5}}, id="url-number"),
        pytest.param({"page": {"url": "https://shop.example/", "title": "\x00"}}, id="nul-title"),
        pytest.param({"page": {"url": "https://shop.example/", "referrer": "\ud800"}}, id="surrogate-referrer"),
        pytest.param({"page": {"url": "https://shop.example/"}, "language": 7}, id="language-number"),
        pytest.param({"page": {"url": "https://shop.example/"}, "language": "x" * 36}, id="language-too-long"),
        pytest.param({"page": {"url": "https://shop.example/"}, "visitor_token": 12345}, id="token-number"),
        pytest.param({"page": {"url": "https://shop.example/"}, "visitor_token": "a.b\x00"}, id="token-nul"),
        pytest.param({"page": {"url": "https://shop.example/"}, "visitor_token": "a.\ud800"}, id="token-surrogate"),
    ],
)
async def test_bad_hello_is_refused_and_a_good_one_may_follow(gateway: TestClient, hello: dict[str, Any]) -> None:
    widget = await Widget.open(gateway)
    # ensure_ascii (the default) writes lone surrogates as \ud800 escapes, as browsers do.
    await widget.ws.send_str(json.dumps({"type": "hello"} | hello))
    assert (await widget.expect("error"))["code"] in ("bad_frame", "bad_text", "too_large")
    await widget.hello()
    assert widget.token and (await widget.say("hello after all", "c-1"))["id"]


async def test_refused_hello_of_a_returning_visitor_changes_nothing(gateway: TestClient) -> None:
    first = await Widget.connect(gateway)
    await first.say("hello", "c-1")
    store = gateway.app[STORE]
    before = await store.contacts.collection.find_one()
    again = await Widget.open(gateway)
    page = {"url": "https://shop.example/other", "title": "Other\x00"}
    await again.ws.send_json({"type": "hello", "visitor_token": first.token, "page": page})
    assert (await again.expect("error"))["code"] == "bad_text"
    assert await store.contacts.collection.find_one() == before


async def test_tokens_that_are_not_ours_get_a_fresh_identity(gateway: TestClient) -> None:
    for token in ["é.é", "x" * 10_000, "", "."]:
        widget = await Widget.connect(gateway, token=token)
        assert widget.token and widget.token != token


@pytest.mark.parametrize("visitor_id", ["\ud800", "a\x00b", "$where", "a.b", "x" * 1000, "", 42])
async def test_token_of_our_secret_naming_an_odd_visitor_id_gets_a_fresh_identity(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, visitor_id: Any
) -> None:
    """Only a leaked secret signs such a token; still, the id must not reach storage."""
    token = Signer(WIDGET_SECRET, "widget-visitor").sign({"v": visitor_id})
    widget = await Widget.connect(gateway, token=token)
    assert widget.token != token
    assert (await widget.say("hello", "c-1"))["id"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_text_frame_that_is_not_utf8_gets_an_error(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_frame(b'{"type": "message", "text": "\xff\xfe", "client_id": "c"}', WSMsgType.TEXT)
    assert (await widget.expect("error"))["code"] == "bad_json"
    assert (await widget.say("still here", "c-2"))["client_id"] == "c-2"


async def test_binary_frames_get_an_error_after_hello_too(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_bytes(json.dumps({"type": "message", "text": "hi", "client_id": "c"}).encode())
    assert (await widget.expect("error"))["code"] == "bad_frame"
    assert await gateway.app[STORE].messages.collection.count_documents({}) == 0
    assert (await widget.say("still here", "c-2"))["client_id"] == "c-2"


async def test_frame_far_over_our_limit_gets_an_error_not_a_closed_socket(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_str("x" * 500_000)
    assert (await widget.expect("error"))["code"] == "too_large"
    await widget.ws.send_json({"type": "message", "text": "y" * 100_000, "client_id": "big"})
    assert (await widget.expect("error"))["code"] == "too_large"
    assert (await widget.say("still here", "c-2"))["client_id"] == "c-2"


async def test_frame_past_aiohttps_own_limit_closes_with_1009_not_abnormally(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.send_str("x" * (16_384 + (1 << 20) + 1))
    assert await widget.closed() == WSCloseCode.MESSAGE_TOO_BIG


async def test_pings_and_pongs_leave_the_socket_usable(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.ws.ping(b"are you there")
    await widget.ws.pong(b"unasked")
    await widget.ws.ping()
    assert (await widget.say("still here", "c-1"))["client_id"] == "c-1"


async def test_malformed_origin_is_refused_with_4003(gateway: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    widget = await Widget.open(gateway, headers={"Origin": "http://["})
    assert (await widget.expect("error"))["code"] == "forbidden_origin"
    assert await widget.closed() == 4003
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_user_agent_that_is_not_utf8_does_not_break_the_visitor(gateway: TestClient) -> None:
    """Header bytes that are not UTF-8 reach the app as lone surrogates, which MongoDB cannot store."""
    reader, writer = await _raw_socket(gateway, user_agent=b"Mozilla/5.0 \xff\xfe\x80 (X11; Linux x86_64)")
    page = {"url": "https://shop.example/", "title": "Shop"}
    await _raw_send(writer, {"type": "hello", "page": page})
    assert (await _raw_receive(reader))["type"] == "welcome"
    await _raw_send(writer, {"type": "message", "text": "hello", "client_id": "c-1"})
    assert (await _raw_receive(reader))["type"] == "ack"
    contact = await gateway.app[STORE].contacts.collection.find_one()
    assert contact["visitor"]["user_agent"] == "Mozilla/5.0 \\udcff\\udcfe\\udc80 (X11; Linux x86_64)"
    writer.close()


async def test_a_tab_that_stops_reading_is_cut_off_and_holds_up_nobody(
    aiohttp_client: Any, make_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"max_frame_bytes": 1 << 20, "max_text_length": 100_000, "push_timeout_seconds": 0.5}
    limits |= {"messages_per_minute": 1000, "frames_per_minute": 1000, "messages_per_minute_per_ip": 1000}
    client = await aiohttp_client(create_app(make_settings(webwidget=limits)))
    tab = await Widget.connect(client)
    # Another tab of the same visitor that never reads what it is sent, with almost no room to buffer it.
    reader, writer = await _raw_socket(client, receive_buffer=4096)
    await _raw_send(writer, {"type": "hello", "visitor_token": tab.token, "page": {"url": "https://shop.example/"}})
    # Every message is echoed to the stalled tab. Once the buffers between us are full, that push waits:
    # without a bound on it, the next ack would never come.
    for n in range(200):
        assert (await tab.say("x" * 100_000, f"c-{n}"))["client_id"] == f"c-{n}"
        if any("not reading" in r.getMessage() for r in caplog.records):
            break
    else:
        pytest.fail("the buffers never filled up")
    assert (await tab.say("and one more", "c-last"))["client_id"] == "c-last"
    # The stalled tab was disconnected: what it had not read ends, and then the connection does.
    async with asyncio.timeout(10):
        while await reader.read(1 << 16):
            pass
    writer.close()


async def _raw_socket(
    client: TestClient, *, user_agent: bytes = b"Mozilla/5.0", receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, for what aiohttp's client cannot do: send any header bytes, never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (client.host, client.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer or 1 << 16)
    writer.write(
        b"GET /channels/webwidget/ws HTTP/1.1\r\nHost: shop.example\r\nOrigin: https://shop.example\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\n"
        b"User-Agent: " + user_agent + b"\r\n\r\n"
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


async def _raw_send(writer: asyncio.StreamWriter, frame: dict[str, Any]) -> None:
    """One masked text frame, as a client must send it (RFC 6455 section 5.2)."""
    payload, mask = json.dumps(frame).encode(), os.urandom(4)
    assert len(payload) < 1 << 16
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2)
    writer.write(b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()


async def _raw_receive(reader: asyncio.StreamReader) -> dict[str, Any]:
    """One unmasked text frame from the server."""
    async with asyncio.timeout(5):
        opcode, length = await reader.readexactly(2)
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2))
        assert opcode == 0x81
        return json.loads(await reader.readexactly(length))


async def test_storage_failure_on_a_message_is_unavailable_and_the_socket_lives(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    store = gateway.app[STORE]
    await store.client.close()  # the database connection is gone
    await widget.ws.send_json({"type": "message", "text": "are you there?", "client_id": "c-1"})
    error = await widget.expect("error")
    assert (error["code"], error["client_id"]) == ("unavailable", "c-1")
    await widget.ws.send_json({"type": "identify", "name": "Ann Lee"})
    assert (await widget.expect("error"))["code"] == "unavailable"

    client: AsyncMongoClient = AsyncMongoClient(store.uri, tz_aware=True)
    store.client = client
    store.bind(client[store.settings.database])
    assert (await widget.say("are you there?", "c-1"))["client_id"] == "c-1"
    assert await store.messages.collection.count_documents({}) == 1


async def test_storage_failure_on_hello_is_unavailable_and_hello_may_be_repeated(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    await store.client.close()
    widget = await Widget.open(gateway)
    await widget.ws.send_json({"type": "hello", "page": {"url": "https://shop.example/"}})
    assert (await widget.expect("error"))["code"] == "unavailable"

    client: AsyncMongoClient = AsyncMongoClient(store.uri, tz_aware=True)
    store.client = client
    store.bind(client[store.settings.database])
    await widget.hello()
    assert (await widget.say("hello", "c-1"))["client_id"] == "c-1"


async def test_hello_that_could_not_be_answered_does_not_hold_a_socket_slot(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"sockets_per_visitor": 2})))
    first = await Widget.connect(client)
    await first.say("hello", "c-1")
    store = client.app[STORE]
    await store.client.close()
    stuck = await Widget.open(client)
    await stuck.ws.send_json({"type": "hello", "visitor_token": first.token, "page": {"url": "https://shop.example/"}})
    assert (await stuck.expect("error"))["code"] == "unavailable"

    mongo: AsyncMongoClient = AsyncMongoClient(store.uri, tz_aware=True)
    store.client = mongo
    store.bind(mongo[store.settings.database])
    # The socket whose hello failed is not counted as the visitor's: a second one is admitted.
    assert await _admitted(client, first.token)


# -- abuse limits ----------------------------------------------------------------------------------

PROXIED = {"server": {"trusted_proxies": ["127.0.0.0/8"]}}


def behind_proxy(client_address: str) -> dict[str, str]:
    """Headers of a visitor at `client_address`, as our reverse proxy on localhost forwards them."""
    return {"Origin": "https://shop.example", "X-Forwarded-For": f"{client_address}, 127.0.0.1"}


async def test_message_limit_holds_across_the_sockets_of_one_visitor(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"messages_per_minute": 3})))
    tab1 = await Widget.connect(client)
    tab2 = await Widget.connect(client, token=tab1.token)
    tab3 = await Widget.connect(client, token=tab1.token)
    await tab1.say("one", "c-1")
    await tab2.say("two", "c-2")
    await tab3.say("three", "c-3")
    for n, tab in enumerate((tab1, tab2, tab3), start=4):
        await tab.ws.send_json({"type": "message", "text": "one too many", "client_id": f"c-{n}"})
        error = await tab.expect("error")
        assert (error["code"], error["client_id"]) == ("rate_limited", f"c-{n}")
    assert await client.app[STORE].messages.collection.count_documents({}) == 3
    # Another visitor has an allowance of their own.
    assert (await (await Widget.connect(client)).say("hi", "s-1"))["id"]


async def test_message_limit_per_address_holds_across_visitors(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"messages_per_minute_per_ip": 2})))
    first, second, third = [await Widget.connect(client) for _ in range(3)]
    await first.say("one", "c-1")
    await second.say("two", "c-1")
    await third.ws.send_json({"type": "message", "text": "three", "client_id": "c-1"})
    assert (await third.expect("error"))["code"] == "rate_limited"
    assert await client.app[STORE].messages.collection.count_documents({}) == 2


async def test_frame_limit_holds_across_the_sockets_of_one_visitor(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"frames_per_minute": 4})))
    tab1 = await Widget.connect(client)
    tab2 = await Widget.connect(client, token=tab1.token)
    for tab in (tab1, tab2, tab1, tab2):
        await tab.ws.send_json({"type": "typing"})
    await tab2.ws.send_json({"type": "message", "text": "hi", "client_id": "c-1"})
    # The four typing frames were taken silently; the fifth frame is one too many.
    frames = await tab2.frames_until("error")
    assert [(f["type"], f["code"], f["client_id"]) for f in frames] == [("error", "rate_limited", "c-1")]
    assert await client.app[STORE].messages.collection.count_documents({}) == 0


async def test_frame_limit_per_address_counts_every_frame(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(**PROXIED, webwidget={"frames_per_minute_per_ip": 4})
    client = await aiohttp_client(create_app(settings))
    here = behind_proxy("198.51.100.1")
    first = await Widget.connect(client, headers=here)  # 1: hello
    silent = await Widget.open(client, headers=here)
    await silent.ws.send_bytes(b"\x00")  # 2: bad frames count
    assert (await silent.expect("error"))["code"] == "bad_frame"
    await silent.ws.send_json({"type": "typing"})  # 3: so do frames before hello
    assert (await silent.expect("error"))["code"] == "hello_required"
    await first.ws.send_json({"type": "typing"})  # 4
    await first.ws.send_json({"type": "message", "text": "hi", "client_id": "c-1"})
    assert (await first.expect("error"))["code"] == "rate_limited"
    # A visitor at another address is not held back.
    elsewhere = await Widget.connect(client, headers=behind_proxy("198.51.100.2"))
    assert (await elsewhere.say("hi", "c-1"))["id"]


async def test_new_visitors_per_address_are_limited(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(**PROXIED, webwidget={"visitors_per_minute_per_ip": 2})
    client = await aiohttp_client(create_app(settings))
    here = behind_proxy("198.51.100.1")
    first = await Widget.connect(client, headers=here)
    await Widget.connect(client, headers=here)
    third = await Widget.open(client, headers=here)
    hello = {"type": "hello", "page": {"url": "https://shop.example/"}}
    await third.ws.send_json(hello)
    assert (await third.expect("error"))["code"] == "rate_limited"
    # A token that is not ours asks for a new visitor too.
    await third.ws.send_json(hello | {"visitor_token": "forged.token"})
    assert (await third.expect("error"))["code"] == "rate_limited"
    # Returning visitors are not new; the refused socket is still usable.
    welcome = await third.hello(first.token)
    assert welcome["visitor_token"] == first.token
    assert (await Widget.connect(client, headers=behind_proxy("198.51.100.2"))).token


async def test_sockets_per_visitor_are_capped_and_the_new_one_refused(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"sockets_per_visitor": 2})))
    tab1 = await Widget.connect(client)
    tab2 = await Widget.connect(client, token=tab1.token)
    tab3 = await Widget.open(client)
    await tab3.ws.send_json({"type": "hello", "visitor_token": tab1.token, "page": {"url": "https://shop.example/"}})
    assert (await tab3.expect("error"))["code"] == "too_many_sockets"
    assert await tab3.closed() == WSCloseCode.OK
    # The tabs already open are untouched: a message from one shows in the other.
    ack = await tab2.say("from tab 2", "c-1")
    assert (await tab1.expect("message"))["id"] == ack["id"]
    assert (await Widget.connect(client)).token  # other visitors are not affected

    await tab1.close()
    assert await eventually(lambda: _admitted(client, tab1.token), "a tab admitted once another closed")


async def test_sockets_per_address_are_capped(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(**PROXIED, webwidget={"sockets_per_ip": 2})))
    here = behind_proxy("2001:db8::1")
    first = await Widget.open(client, headers=here)
    await Widget.open(client, headers=here)
    # Another address in the same IPv6 /64 is the same subscriber.
    refused = await Widget.open(client, headers=behind_proxy("2001:db8::2"))
    assert (await refused.expect("error"))["code"] == "too_many_sockets"
    assert await refused.closed() == WSCloseCode.OK
    assert (await Widget.connect(client, headers=behind_proxy("2001:db8:0:1::1"))).token

    await first.close()
    assert await eventually(lambda: _admitted(client, None, here), "a socket admitted once another closed")


async def _admitted(client: TestClient, token: str | None, headers: dict[str, str] | None = None) -> bool:
    """Whether a new socket gets a welcome now."""
    widget = await Widget.open(client, headers=headers)
    frame: dict[str, Any] = {"type": "hello", "page": {"url": "https://shop.example/"}}
    await widget.ws.send_json(frame if token is None else frame | {"visitor_token": token})
    answer = await widget.ws.receive_json()
    if answer["type"] != "welcome":
        await widget.close()
    return answer["type"] == "welcome"


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("198.51.100.1", "198.51.100.1", True),
        ("198.51.100.1", "198.51.100.2", False),
        ("198.51.100.1:4711", "198.51.100.1", True),  # some proxies add the port
        ("::ffff:198.51.100.1", "198.51.100.1", True),  # an IPv4 client of a dual-stack listener
        ("2001:db8::1", "2001:db8::2", True),  # one /64
        ("[2001:db8::1]:443", "2001:db8::2", True),
        ("2001:db8::1", "2001:db8:0:1::1", False),
    ],
)
async def test_trusted_proxy_tells_the_client_address(
    aiohttp_client: Any, make_settings: Any, first: str, second: str, shared: bool
) -> None:
    settings = make_settings(**PROXIED, webwidget={"messages_per_minute_per_ip": 1})
    client = await aiohttp_client(create_app(settings))
    await (await Widget.connect(client, headers=behind_proxy(first))).say("hi", "c-1")
    other = await Widget.connect(client, headers=behind_proxy(second))
    await other.ws.send_json({"type": "message", "text": "hi", "client_id": "c-1"})
    answer = await other.ws.receive_json()
    assert (answer["type"] == "error" and answer["code"] == "rate_limited") is shared


async def test_untrusted_peer_cannot_pick_its_address_with_forwarded_for(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(webwidget={"messages_per_minute_per_ip": 1})))
    await (await Widget.connect(client, headers=behind_proxy("198.51.100.1"))).say("hi", "c-1")
    other = await Widget.connect(client, headers=behind_proxy("198.51.100.2"))
    await other.ws.send_json({"type": "message", "text": "hi", "client_id": "c-1"})
    assert (await other.expect("error"))["code"] == "rate_limited"
    contact = await client.app[STORE].contacts.collection.find_one()
    assert contact["visitor"]["ip"] == "127.0.0.1"


async def test_forwarded_for_port_is_not_part_of_the_stored_address(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(**PROXIED)))
    await (await Widget.connect(client, headers=behind_proxy("198.51.100.7:4711"))).say("hi", "c-1")
    contact = await client.app[STORE].contacts.collection.find_one()
    assert contact["visitor"]["ip"] == "198.51.100.7"


def test_rate_limit_refills_and_forgets_idle_keys() -> None:
    now = [0.0]
    limit = RateLimit(2, clock=lambda: now[0])
    assert [limit.allow("a"), limit.allow("a"), limit.allow("a")] == [True, True, False]
    assert limit.allow("b")
    now[0] = 30.0  # half a minute: one event's worth back
    assert [limit.allow("a"), limit.allow("a")] == [True, False]
    now[0] = 200.0
    assert limit.allow("c") and len(limit) == 1  # a and b were idle for a minute: full again, so forgotten
    assert [limit.allow("a"), limit.allow("a"), limit.allow("a")] == [True, True, False]


def test_rate_limit_keeps_at_most_max_keys() -> None:
    limit = RateLimit(1, max_keys=3, clock=lambda: 0.0)
    assert all(limit.allow(f"198.51.100.{n}") for n in range(100))
    assert len(limit) == 3
    assert not limit.allow("198.51.100.99")  # the most recent keys are the ones kept
