"""The REST API: authentication, validation, threads, messages and customer info."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

import pytest
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.test_utils import TestClient
from bson import ObjectId

from channels.base import InboundMessage, Profile
from gateway.api import document
from gateway.app import create_app
from gateway.config import Settings
from gateway.keys import CONVERSATIONS, INBOX, STORE
from gateway.model import (
    Author,
    Button,
    Content,
    Direction,
    IdentityRef,
    Kind,
    Location,
    Media,
    Message,
    MessageStatus,
    Notice,
    utcnow,
)
from gateway.tokens import VisitorTokens
from tests.gateway.test_openapi import Contract
from tests.helpers import API_TOKEN, AUTH, WIDGET_SECRET, Widget

CONTRACT = Contract(document())


async def conforms(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """A client middleware: every answer of a documented operation must be what the document says."""
    response = await handler(request)
    path = request.url.raw_path
    if CONTRACT.operation(request.method, path) is not None:
        body = await response.read()
        problems = CONTRACT.problems(request.method, path, response.status, response.headers, body)
        assert not problems, problems
    return response


@pytest.fixture
async def gateway(aiohttp_client: Any, settings: Settings) -> TestClient:
    """The real app; every API response the tests here receive is checked against the OpenAPI document."""
    return await aiohttp_client(create_app(settings), middlewares=(conforms,))


async def raw_request(client: TestClient, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes no HTTP client would send (a header that is not UTF-8); the status and the whole answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head.replace(b"\n", b"\r\n") + b"Connection: close\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(answer.split(b" ", 2)[1]), answer


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines that carry an exception or report an error."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def customer(gateway: TestClient, external_id: str = "v1", text: str = "hi", **profile) -> tuple:
    ref = IdentityRef("webwidget", "web", external_id)
    message = await gateway.app[INBOX].on_inbound(
        InboundMessage(
            sender=ref, message_id=f"{external_id}:{text}", content=Content(Kind.TEXT, text), profile=Profile(**profile)
        )
    )
    thread = await gateway.app[STORE].threads.get(message.thread_id)
    return thread, message.contact_id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": "test-api-token-0123456789"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
    ],
)
async def test_requests_without_a_valid_token_get_401(gateway: TestClient, headers: dict) -> None:
    for method, path in [
        ("GET", "/api/v1/threads"),
        ("GET", "/api/v1/contacts/x"),
        ("POST", "/api/v1/threads/1/messages"),
        ("PATCH", "/api/v1/contacts/x"),
    ]:
        response = await gateway.request(method, path, headers=headers, json={"text": "x"})
        assert response.status == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await gateway.app[STORE].messages.collection.count_documents({}) == 0


async def test_list_and_filter_threads(gateway: TestClient) -> None:
    first, _ = await customer(gateway, "v1")
    second, _ = await customer(gateway, "v2")
    await gateway.app[CONVERSATIONS].close(first)

    async def numbers(query: str) -> list[int]:
        response = await gateway.get(f"/api/v1/threads{query}", headers=AUTH)
        assert response.status == 200
        return sorted(t["number"] for t in (await response.json())["threads"])

    assert await numbers("") == sorted([first.number, second.number])
    assert await numbers("?status=closed") == [first.number]
    assert await numbers("?status=queued&channel=webwidget") == [second.number]
    assert await numbers("?channel=telegram") == []
    assert await numbers("?limit=1") in ([first.number], [second.number])

    detail = await (await gateway.get(f"/api/v1/threads/{second.number}", headers=AUTH)).json()
    assert detail["id"] == str(second.id) and detail["status"] == "queued" and detail["unread"] == 1
    assert (await gateway.get(f"/api/v1/threads/%23{second.number}", headers=AUTH)).status == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=open", "status"),
        ("?operator=bob", "operator"),
        ("?limit=0", "limit"),
        ("?limit=9999", "limit"),
        ("?offset=-1", "offset"),
    ],
)
async def test_bad_thread_filters_name_the_field(gateway: TestClient, query: str, field: str) -> None:
    response = await gateway.get(f"/api/v1/threads{query}", headers=AUTH)
    assert response.status == 400 and (await response.json())["field"] == field


async def test_unknown_and_malformed_ids(gateway: TestClient) -> None:
    assert (await gateway.get("/api/v1/threads/999", headers=AUTH)).status == 404
    assert (await gateway.get("/api/v1/threads/999/messages", headers=AUTH)).status == 404
    bad = await gateway.get("/api/v1/threads/abc", headers=AUTH)
    assert bad.status == 400 and (await bad.json())["field"] == "number"
    assert (await gateway.get(f"/api/v1/contacts/{ObjectId()}", headers=AUTH)).status == 404
    bad = await gateway.get("/api/v1/contacts/not-an-id", headers=AUTH)
    assert bad.status == 400 and (await bad.json())["field"] == "id"


async def test_messages_of_a_thread_and_posting_a_reply(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    await widget.say("Do you ship to Norway?", "c-1")
    store = gateway.app[STORE]
    thread = (await store.threads.find())[0]

    response = await gateway.post(
        f"/api/v1/threads/{thread.number}/messages", headers=AUTH, json={"text": "Yes, in 3-5 days."}
    )
    assert response.status == 201
    body = await response.json()
    assert body["direction"] == "out" and body["author"] == "operator" and body["author_name"] == "Support"
    assert (await widget.expect("message"))["text"] == "Yes, in 3-5 days."

    listed = await (await gateway.get(f"/api/v1/threads/{thread.number}/messages", headers=AUTH)).json()
    assert [(m["direction"], m["text"], m["status"]) for m in listed["messages"]] == [
        ("in", "Do you ship to Norway?", "received"),
        ("out", "Yes, in 3-5 days.", "delivered"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({"text": "x" * 5000}, "text"),
        ({"text": "hi", "author_name": ""}, "author_name"),
        ({"text": "hi", "priority": 1}, "priority"),
    ],
)
async def test_bad_message_bodies_name_the_field(gateway: TestClient, body: dict, field: str) -> None:
    thread, _ = await customer(gateway)
    response = await gateway.post(f"/api/v1/threads/{thread.number}/messages", headers=AUTH, json=body)
    assert response.status == 400 and (await response.json())["field"] == field
    assert await gateway.app[STORE].messages.collection.count_documents({"direction": "out"}) == 0


async def test_non_json_bodies_are_refused(gateway: TestClient) -> None:
    thread, contact_id = await customer(gateway)
    response = await gateway.post(f"/api/v1/threads/{thread.number}/messages", headers=AUTH, data="text=hi")
    assert response.status == 400
    response = await gateway.patch(f"/api/v1/contacts/{contact_id}", headers=AUTH, json=["name"])
    assert response.status == 400


async def test_set_customer_info_and_find_contacts(gateway: TestClient) -> None:
    _, contact_id = await customer(gateway)
    response = await gateway.patch(
        f"/api/v1/contacts/{contact_id}",
        headers=AUTH,
        json={
            "name": "Ann Lee",
            "email": "ANN@example.com",
            "phone": "+1 415-555-2671",
            "attributes": {"plan": "pro", "seats": 12, "trial": False},
        },
    )
    assert response.status == 200
    contact = await response.json()
    assert contact["name"] == "Ann Lee" and contact["emails"] == ["ann@example.com"]
    assert contact["phones"] == ["+14155552671"]
    assert contact["attributes"] == {"plan": "pro", "seats": 12, "trial": False}

    await gateway.patch(f"/api/v1/contacts/{contact_id}", headers=AUTH, json={"attributes": {"seats": 15}})
    stored = await gateway.app[STORE].contacts.get(ObjectId(contact_id))
    assert stored.attributes == {"plan": "pro", "seats": 15, "trial": False}

    by_phone = await (await gateway.get("/api/v1/contacts?phone=(415) 555-2671", headers=AUTH)).json()
    by_email = await (await gateway.get("/api/v1/contacts?email=Ann@Example.com", headers=AUTH)).json()
    assert [c["id"] for c in by_phone["contacts"]] == [str(contact_id)] == [c["id"] for c in by_email["contacts"]]
    nobody = await (await gateway.get("/api/v1/contacts?email=nobody@example.com", headers=AUTH)).json()
    assert nobody == {"contacts": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"attributes": []}, "attributes"),
        ({"attributes": {"a.b": 1}}, "attributes.a.b"),
        ({"attributes": {"$where": 1}}, "attributes.$where"),
        ({"attributes": {"x": {"nested": 1}}}, "attributes.x"),
        ({"nickname": "x"}, "nickname"),
        ({}, None),
    ],
)
async def test_bad_customer_info_names_the_field_and_changes_nothing(
    gateway: TestClient, body: dict, field: str | None
) -> None:
    _, contact_id = await customer(gateway)
    before = await gateway.app[STORE].contacts.collection.find_one({"_id": contact_id})
    response = await gateway.patch(f"/api/v1/contacts/{contact_id}", headers=AUTH, json=body)
    assert response.status == 400 and (await response.json())["field"] == field
    assert await gateway.app[STORE].contacts.collection.find_one({"_id": contact_id}) == before


async def test_find_contacts_needs_a_valid_phone_or_email(gateway: TestClient) -> None:
    for query, field in [("", "phone"), ("?phone=abc", "phone"), ("?email=nope", "email")]:
        response = await gateway.get(f"/api/v1/contacts{query}", headers=AUTH)
        assert response.status == 400 and (await response.json())["field"] == field


async def test_customer_info_by_visitor_token(gateway: TestClient) -> None:
    widget = await Widget.connect(gateway)
    response = await gateway.patch(
        f"/api/v1/visitors/{widget.token}",
        headers=AUTH,
        json={"name": "Signed-in Sam", "email": "sam@example.com", "attributes": {"customer_id": "C-991"}},
    )
    assert response.status == 200
    await widget.say("hello", "c-1")  # lands on the same card
    contacts = await gateway.app[STORE].contacts.collection.find().to_list()
    assert len(contacts) == 1
    assert contacts[0]["name"] == "Signed-in Sam" and contacts[0]["attributes"] == {"customer_id": "C-991"}

    forged = VisitorTokens("another-secret-entirely-123").issue()[0]
    response = await gateway.patch(f"/api/v1/visitors/{forged}", headers=AUTH, json={"name": "x"})
    assert response.status == 400 and (await response.json())["field"] == "token"
    assert widget.token is not None and VisitorTokens(WIDGET_SECRET).identity(widget.token) is not None


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xff\xfe",
        b"Bearer \xed\xa0\x80",  # a UTF-8 encoded lone surrogate
        b"Bearer " + API_TOKEN.encode() + b"\xc3\xa9",
        b"\xff " + API_TOKEN.encode(),
    ],
)
async def test_tokens_are_compared_as_bytes_whatever_they_hold(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, authorization: bytes
) -> None:
    status, answer = await raw_request(
        gateway, b"GET /api/v1/threads HTTP/1.1\nHost: x\nAuthorization: " + authorization + b"\n"
    )
    assert status == 401 and b"WWW-Authenticate: Bearer" in answer
    assert no_tracebacks(caplog) == []


async def test_the_token_is_checked_before_the_request_is_decoded(
    gateway: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    thread, contact_id = await customer(gateway)
    bad: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/v1/threads?limit=abc&offset=99999999999999999999", {}),
        ("POST", f"/api/v1/threads/{thread.number}/messages", {"data": b"[" * 100_000}),
        ("POST", f"/api/v1/threads/{thread.number}/messages", {"data": b"\xff", "headers": {"Content-Type": "x"}}),
        ("PATCH", f"/api/v1/contacts/{contact_id}", {"data": b'{"name": "\\ud800"}'}),
        ("GET", "/api/v1/threads/99999999999999999999", {}),
    ]
    for method, path, kwargs in bad:
        response = await gateway.request(method, path, **kwargs)
        assert response.status == 401, (method, path)
        assert (await response.json()) == {"error": "a valid bearer token is required", "field": None}
    assert await gateway.app[STORE].messages.collection.count_documents({"direction": "out"}) == 0
    assert no_tracebacks(caplog) == []


async def test_a_token_in_any_case_of_the_scheme_is_accepted(gateway: TestClient) -> None:
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await gateway.get("/api/v1/threads", headers={"Authorization": f"{scheme} {API_TOKEN}"})
        assert response.status == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/threads?offset=73786976294838206464", "offset"),  # 2**66
        ("/threads?offset=9223372036854775808", "offset"),  # 2**63
        ("/threads?limit=%C2%B2", "limit"),  # '²' passes str.isdigit()
        ("/threads?limit=%D9%A1", "limit"),  # Arabic-Indic one, which int() reads
        ("/threads?limit=+5", "limit"),
        ("/threads?limit=1_0", "limit"),
        ("/threads?limit=", "limit"),
        ("/threads?operator=99999999999999999999", "operator"),
        ("/threads?operator=-5", "operator"),
        ("/threads?limit=1&limit=2", "limit"),
        ("/threads?sort=number", "sort"),
        ("/threads?channel=web%00widget", "channel"),
        ("/threads/99999999999999999999", "number"),
        ("/threads/9223372036854775808/messages", "number"),
        ("/threads/%C2%B2", "number"),
        ("/threads/0", "number"),
        ("/threads/-1", "number"),
        ("/threads/1.0", "number"),
        ("/threads/1/messages?offset=73786976294838206464", "offset"),
        ("/contacts?phone=%2B1%00415", "phone"),
        ("/contacts?email=a%40b.c&extra=1", "extra"),
        ("/contacts/%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2%C2%B2", "id"),
        ("/openapi.json?x=1", "x"),
    ],
)
async def test_numbers_and_parameters_are_checked_before_they_reach_the_database(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, path: str, field: str
) -> None:
    await customer(gateway)
    response = await gateway.get("/api/v1" + path, headers=AUTH)
    assert response.status == 400, await response.text()
    assert (await response.json())["field"] == field
    assert no_tracebacks(caplog) == []


async def test_the_largest_numbers_are_still_numbers(gateway: TestClient) -> None:
    top = 2**63 - 1
    assert (await gateway.get(f"/api/v1/threads?offset={top}", headers=AUTH)).status == 200
    assert (await gateway.get(f"/api/v1/threads/{top}", headers=AUTH)).status == 404
    assert (await gateway.get(f"/api/v1/threads/{top}/messages", headers=AUTH)).status == 404
    assert (await gateway.get(f"/api/v1/threads?operator={top}", headers=AUTH)).status == 200


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("data", "content_type", "field"),
    [
        (b"[" * 100_000, "application/json", None),
        (b"[" * 50 + b"]" * 50, "application/json", None),
        (b'{"text": "' + b"x" * 70_000 + b'"}', "application/json", None),
        (b'{"text": "hi \xff"}', "application/json", None),
        (body({"text": "hi"}), "application/json; charset=latin-1", None),
        (body({"text": "hi"}), "application/json; charset=\u00ff", None),
        (b'{"text": NaN}', "application/json", None),
        (b'{"text": "hi"', "application/json", None),
        (b"", "application/json", None),
        (body("hi"), "application/json", None),
        (body({"text": "hi\u0000there"}), "application/json", "text"),
        (b'{"text": "hi \\ud800"}', "application/json", "text"),
        (b'{"text": "hi", "author_name": "\\udfff"}', "application/json", "author_name"),
        (body({"text": ["hi"]}), "application/json", "text"),
        (body({"text": None}), "application/json", "text"),
        (body({"text": "   \n\t"}), "application/json", "text"),
        (body({"text": "hi", "author_name": 7}), "application/json", "author_name"),
        (b'{"text": "hi", "\\ud800": 1}', "application/json", "\\ud800"),
    ],
)
async def test_no_message_body_breaks_the_api(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, data: bytes, content_type: str, field: str | None
) -> None:
    thread, _ = await customer(gateway)
    response = await gateway.post(
        f"/api/v1/threads/{thread.number}/messages", headers=AUTH | {"Content-Type": content_type}, data=data
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["field"] == field
    assert await gateway.app[STORE].messages.collection.count_documents({"direction": "out"}) == 0
    assert no_tracebacks(caplog) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"name": "Ann \\ud800"}', "name"),
        (body({"name": "Ann\u0000Lee"}), "name"),
        (body({"name": None}), "name"),
        (body({"phone": 4155552671}), "phone"),
        (body({"email": "ann@exa\u0000mple.com"}), "email"),
        (b'{"email": "ann@\\udc00.com"}', "email"),
        (body({"attributes": {"plan": "pro\u0000"}}), "attributes.plan"),
        (b'{"attributes": {"plan": "\\ud83d"}}', "attributes.plan"),
        (b'{"attributes": {"\\ud800": 1}}', "attributes.\\ud800"),
        (body({"attributes": {"a\u0000b": 1}}), "attributes.a\u0000b"),
        (body({"attributes": {"": 1}}), "attributes."),
        (body({"attributes": {"seats": 2**70}}), "attributes.seats"),
        (body({"attributes": {"seats": -(2**63) - 1}}), "attributes.seats"),
        (b'{"attributes": {"seats": 1e999}}', None),
        (body({"attributes": {"x": [1, 2]}}), "attributes.x"),
        (body({"attributes": {"x": "y" * 1001}}), "attributes.x"),
        (body({"attributes": {f"k{i}": i for i in range(51)}}), "attributes"),
        (body({"attributes": None}), "attributes"),
        (b'{"name": "Ann", "name": 5}', "name"),
        (b"{" * 20 + b"}" * 20, None),
    ],
)
async def test_no_customer_info_breaks_the_api(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, data: bytes, field: str | None
) -> None:
    _, contact_id = await customer(gateway)
    before = await gateway.app[STORE].contacts.collection.find_one({"_id": contact_id})
    response = await gateway.patch(
        f"/api/v1/contacts/{contact_id}", headers=AUTH | {"Content-Type": "application/json"}, data=data
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["field"] == field
    assert await gateway.app[STORE].contacts.collection.find_one({"_id": contact_id}) == before
    assert no_tracebacks(caplog) == []


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "%C3%A9t%C3%A9.x", "a.b", "%ED%A0%80.x", "x" * 600 + ".y", "eyJ2IjoiYSJ9.%00"],
)
async def test_no_visitor_token_breaks_the_api(
    gateway: TestClient, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    response = await gateway.patch(f"/api/v1/visitors/{token}", headers=AUTH, json={"name": "x"})
    assert response.status == 400 and (await response.json())["field"] == "token"
    assert await gateway.app[STORE].contacts.collection.count_documents({}) == 0
    assert no_tracebacks(caplog) == []


async def test_the_openapi_document_needs_no_token_and_other_errors_are_json(gateway: TestClient) -> None:
    assert (await gateway.get("/api/v1/openapi.json")).status == 200
    wrong_method = await gateway.delete("/api/v1/threads", headers=AUTH)
    assert wrong_method.status == 405 and wrong_method.headers["Allow"] == "GET"
    assert await wrong_method.json() == {"error": "method not allowed", "field": None}
    unknown = await gateway.get("/api/v1/nothing-here", headers=AUTH)
    assert unknown.status == 404 and await unknown.json() == {"error": "not found", "field": None}
    assert (await gateway.get("/api/v1/nothing-here")).status == 401


async def test_responses_show_what_a_message_says_and_nothing_internal(gateway: TestClient) -> None:
    thread, contact_id = await customer(gateway)
    store = gateway.app[STORE]
    first = (await store.messages.for_thread(thread.id))[0]
    photo = Message(
        id=ObjectId(),
        thread_id=thread.id,
        contact_id=contact_id,
        direction=Direction.IN,
        author=Author.CONTACT,
        channel="webwidget",
        account="web",
        identity=thread.identity,
        created_at=utcnow(),
        status=MessageStatus.RECEIVED,
        content=Content(
            Kind.IMAGE,
            "our shop",
            media=(Media(source="webwidget", ref="file-ref-secret", account="web", mime_type="image/png", size=9),),
            location=Location(59.91, 10.75, title="Oslo"),
            buttons=(Button("Yes", "yes"),),
            reply_to=str(first.id),
        ),
        attempts=3,
    )
    await store.messages.insert(photo)
    await gateway.app[CONVERSATIONS].note(thread, notice=Notice("released.offline", {"operator": "Maria"}))

    listed = await (await gateway.get(f"/api/v1/threads/{thread.number}/messages", headers=AUTH)).json()
    _, shown, note = listed["messages"]
    assert shown["kind"] == "image" and shown["text"] == "our shop" and shown["reply_to"] == str(first.id)
    assert shown["media"] == [{"mime_type": "image/png", "size": 9, "name": None, "duration": None}]
    assert shown["location"] == {"latitude": 59.91, "longitude": 10.75, "title": "Oslo", "address": None}
    assert shown["buttons"] == [{"text": "Yes", "payload": "yes"}]
    for internal in ("attempts", "next_attempt_at", "account", "identity", "client_id", "content", "template"):
        assert internal not in shown
    assert note["direction"] == "internal" and note["notice"] == {
        "key": "released.offline",
        "values": {"operator": "Maria"},
    }
    assert datetime.fromisoformat(shown["created_at"]).utcoffset() is not None

    detail = await (await gateway.get(f"/api/v1/threads/{thread.number}", headers=AUTH)).json()
    for internal in ("identity", "busy_notice_sent", "joined_into", "topic_chat_id", "topic_id"):
        assert internal not in detail
    contact = await (await gateway.get(f"/api/v1/contacts/{contact_id}", headers=AUTH)).json()
    assert contact["identities"] == [
        {
            "channel": "webwidget",
            "external_id": "v1",
            "username": None,
            "display_name": None,
            "reachable": True,
            "unreachable_reason": None,
            "last_inbound_at": contact["identities"][0]["last_inbound_at"],
        }
    ]
    assert "merge_lock" not in contact and "key" not in contact["identities"][0]
