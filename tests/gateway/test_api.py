"""The REST API: authentication, validation, threads, messages and customer info."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from bson import ObjectId

from channels.base import InboundMessage, Profile
from gateway.keys import CONVERSATIONS, INBOX, STORE
from gateway.model import Content, IdentityRef, Kind
from gateway.tokens import VisitorTokens
from tests.helpers import AUTH, WIDGET_SECRET, Widget


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
    assert VisitorTokens(WIDGET_SECRET).identity(widget.token) is not None
