"""A person's data on request, through the REST API and the real hub: export it all, or erase it all, while
messages keep arriving; merged cards, merge records and the KPIs included."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from bson import ObjectId, json_util

from channels.base import InboundMessage
from gateway.app import create_app
from gateway.config import Settings
from gateway.keys import CONVERSATIONS, INBOX, MERGER, PRIVACY, PROFILES, STORE
from gateway.merge import LOCK_TTL, MergeOutcome
from gateway.model import Content, Kind, Media, Note, utcnow
from gateway.storage.threads import ERASED_IDENTITY
from gateway.tokens import VisitorTokens
from tests.gateway.test_api import conforms
from tests.helpers import (
    AUTH,
    PHONE,
    TELEGRAM,
    WHATSAPP,
    WIDGET_SECRET,
    Widget,
    eventually,
    from_whatsapp,
    inbound,
    settle,
)

EMAIL = "ann@example.com"
PHOTO = Media(source="telegram", ref="AgACAgIAAxkBAAIB", mime_type="image/jpeg", size=2048, name="receipt.jpg")
# What Ann told us, in one form or another: none of it may be left anywhere in the database after her erasure.
HERS = (PHONE, PHONE[2:], EMAIL, "Ann Lee", "my order is late", "order 1234", "receipt.jpg", "prefers e-mail",
        "5001", "Do you ship to Norway", "shop.example/pricing")  # fmt: skip


@pytest.fixture
async def gateway(aiohttp_client: Any, make_settings: Any) -> TestClient:
    """The real app, its privacy loop quick; every API answer is checked against the OpenAPI document."""
    settings: Settings = make_settings(privacy={"interval_seconds": 0.05})
    return await aiohttp_client(create_app(settings), middlewares=(conforms,))


async def writes(gateway: TestClient, message: Any) -> Any:
    stored = await gateway.app[INBOX].on_inbound(message)
    await settle(gateway.app)
    return stored


async def ann(gateway: TestClient) -> dict[str, Any]:
    """Ann on WhatsApp, on Telegram (a photo too) and in the widget: three cards merged into one, a note,
    attributes, an answer, one closed conversation and one open; the ids of what was made."""
    app = gateway.app
    store, merger = app[STORE], app[MERGER]
    first = await writes(gateway, from_whatsapp("SM1", "my order is late"))
    whatsapp = await store.contacts.get(first.contact_id)
    await gateway.post(f"/api/v1/threads/{(await store.threads.get(first.thread_id)).number}/messages",
                       json={"text": "Let me look", "author_name": "Maria"}, headers=AUTH)  # fmt: skip
    await app[CONVERSATIONS].close(await store.threads.get(first.thread_id))
    photo = InboundMessage(TELEGRAM, "5001:1", Content(Kind.IMAGE, "it is order 1234", media=(PHOTO,)))
    telegram_message = await writes(gateway, photo)
    telegram = await store.contacts.get(telegram_message.contact_id)
    widget = await Widget.connect(gateway)
    await widget.ws.send_json({"type": "identify", "name": "Ann Lee", "email": EMAIL, "phone": PHONE})
    await widget.say("Do you ship to Norway?", "c-1")
    await widget.close()
    await settle(app)
    visitor = VisitorTokens(WIDGET_SECRET).identity(widget.token or "")
    assert visitor is not None
    web = await store.contacts.by_identity(visitor.key)
    await app[PROFILES].update_contact(whatsapp, attributes={"plan": "gold"})
    await store.contacts.add_note(telegram.id, Note(7, "Olga", "prefers e-mail", utcnow()))
    for other in (telegram, web):
        assert (await merger.merge(whatsapp.id, other.id, by=None, reason=f"same phone {PHONE}")).ok
    await settle(app)
    return {"kept": whatsapp.id, "merged": [telegram.id, web.id], "token": widget.token, "visitor": visitor}


async def database(gateway: TestClient) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection."""
    db = gateway.app[STORE].db
    return {name: await db[name].find().to_list() for name in await db.list_collection_names()}


async def kpis(gateway: TestClient) -> tuple[Any, ...]:
    """What /stats counts, over a window around now."""
    threads = gateway.app[STORE].threads
    start, end = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    return (
        await threads.count_between("created_at", start, end),
        await threads.count_between("closed_at", start, end),
        sorted(await threads.spans("created_at", "created_at", "first_response_at", start, end)),
        sorted(await threads.spans("closed_at", "created_at", "closed_at", start, end)),
        sorted(await threads.spans("first_assigned_at", "queued_at", "first_assigned_at", start, end)),
    )


async def test_the_export_holds_everything_stored_about_the_person(gateway: TestClient) -> None:
    ids = await ann(gateway)
    for asked in (ids["kept"], *ids["merged"]):  # a merged-away card stands for the person too
        response = await gateway.get(f"/api/v1/contacts/{asked}/export", headers=AUTH)
        assert response.status == 200
        export = await response.json()
        assert export["contact"]["id"] == str(ids["kept"])

    card = export["contact"]
    assert card["phones"] == [PHONE] and EMAIL in card["emails"] and card["name"] == "Ann Lee"
    assert {i["channel"] for i in card["identities"]} == {"whatsapp", "telegram", "webwidget"}
    assert card["attributes"] == {"plan": "gold"} and [n["text"] for n in card["notes"]] == ["prefers e-mail"]
    assert card["visitor"]["ip"] == "127.0.0.1" and card["visitor"]["pages"][0]["url"].endswith("/pricing")
    assert sorted(c["id"] for c in export["merged_cards"]) == sorted(str(i) for i in ids["merged"])
    assert all(c["merged_into"] == str(ids["kept"]) for c in export["merged_cards"])
    texts = [m["text"] for t in export["threads"] for m in t["messages"]]
    for text in ("my order is late", "Let me look", "it is order 1234", "Do you ship to Norway?"):
        assert text in texts
    answer = next(m for t in export["threads"] for m in t["messages"] if m["text"] == "Let me look")
    assert answer["direction"] == "out" and answer["status"] == "failed" and answer["error"]  # no WhatsApp here
    assert [t["status"] for t in export["threads"]].count("closed") >= 1
    assert [m["number"] for m in export["merges"]] == [1, 2]
    assert all(PHONE in m["reason"] and m["card_before"]["_id"] for m in export["merges"])
    assert any(d["status"] == "merged" and d["matches"] for d in export["duplicates"])
    (link,) = export["media"]
    assert (link["name"], link["mime_type"], link["size"], link["source"]) == (
        "receipt.jpg",
        "image/jpeg",
        2048,
        "telegram",
    )
    assert link["url"].startswith("http://gateway.test/media/")

    unknown = await gateway.get(f"/api/v1/contacts/{ObjectId()}/export", headers=AUTH)
    assert unknown.status == 404
    assert (await gateway.get(f"/api/v1/contacts/{ids['kept']}/export")).status == 401


async def test_erasure_leaves_nothing_of_the_person_keeps_the_kpis_and_answers_what_stays_elsewhere(
    gateway: TestClient,
) -> None:
    app = gateway.app
    store = app[STORE]
    ids = await ann(gateway)
    export = await (await gateway.get(f"/api/v1/contacts/{ids['kept']}/export", headers=AUTH)).json()
    media = export["media"][0]["url"].split("/media/", 1)[1]
    numbers = sorted(t["number"] for t in export["threads"])
    before = await kpis(gateway)

    response = await gateway.delete(f"/api/v1/contacts/{ids['merged'][0]}", headers=AUTH)
    assert response.status == 200
    erasure = await response.json()
    await settle(app)

    everyone = sorted(str(i) for i in (ids["kept"], *ids["merged"]))
    assert sorted(erasure["contact_ids"]) == everyone and erasure["contact_id"] == str(ids["merged"][0])
    assert (erasure["cards"], erasure["threads"], erasure["merges"]) == (3, len(numbers), 2)
    assert erasure["messages"] >= 5 and erasure["duplicates"] >= 1 and erasure["via"] == "api"
    assert not erasure["already_erased"] and erasure["erased_at"]
    places = [x["place"] for x in erasure["not_deleted"]]
    assert places == ["telegram", "webwidget", "whatsapp", "database_history"]

    # Nothing of hers is left, in any collection: not on a card, a message, a merge record, a candidate or the audit.
    dump = await database(gateway)
    dump.pop("signals", None)  # notes between processes, gone after 10 minutes: listed under database_history
    assert [found for found in HERS if found in json_util.dumps(dump)] == []
    for asked in everyone:
        assert (await gateway.get(f"/api/v1/contacts/{asked}", headers=AUTH)).status == 404
        assert (await gateway.get(f"/api/v1/contacts/{asked}/export", headers=AUTH)).status == 404
    assert (await gateway.get(f"/media/{media}")).status == 404
    # Her conversations are still counted, as timings without a person; her open one ended with the erasure.
    opened, closed, first_response, resolution, queue_wait = before
    after = await kpis(gateway)
    assert (after[0], after[2], after[4]) == (opened, first_response, queue_wait)
    assert after[1] == closed + 1 and len(after[3]) == len(resolution) + 1 and set(resolution) <= set(after[3])
    # There is nobody to answer in them.
    for number in numbers:
        thread = await (await gateway.get(f"/api/v1/threads/{number}", headers=AUTH)).json()
        assert thread["status"] == "closed" and thread["erased_at"] and thread["contact_id"] not in everyone
        answer = await gateway.post(f"/api/v1/threads/{number}/messages", json={"text": "hello?"}, headers=AUTH)
        assert answer.status == 409
    assert {t["identity"] for t in await store.threads.collection.find().to_list()} == {ERASED_IDENTITY}
    # The audit says who erased whom and when; asked again, the same erasure is the answer.
    (audit,) = await store.erasures.collection.find().to_list()
    assert audit["via"] == "api" and audit["api_token"] and audit["api_token"] not in AUTH["Authorization"]
    for asked in (ids["kept"], ids["merged"][1]):
        again = await (await gateway.delete(f"/api/v1/contacts/{asked}", headers=AUTH)).json()
        assert again["already_erased"] and again["erasure_id"] == erasure["erasure_id"]
    assert (await gateway.delete(f"/api/v1/contacts/{ObjectId()}", headers=AUTH)).status == 404
    # An unmerge record does not bring anything back.
    undone = await app[MERGER].unmerge(1, by=None)
    assert undone.outcome is MergeOutcome.UNKNOWN
    assert await store.contacts.collection.count_documents({}) == 0


async def test_her_next_message_on_any_channel_starts_a_fresh_card(gateway: TestClient) -> None:
    app = gateway.app
    store = app[STORE]
    ids = await ann(gateway)
    assert (await gateway.delete(f"/api/v1/contacts/{ids['kept']}", headers=AUTH)).status == 200
    erased = {ids["kept"], *ids["merged"]}

    returning = await Widget.connect(gateway, ids["token"])
    assert returning.history == []  # the token opens nothing any more
    await returning.say("me again", "c-2")
    await returning.close()
    for message in (from_whatsapp("SM9", "hello again"), inbound(TELEGRAM, "5001:9", "and here")):
        await writes(gateway, message)
    cards = await store.contacts.collection.find().to_list()
    assert len(cards) == 3 and not {c["_id"] for c in cards} & erased
    for card in cards:
        (identity,) = card["identities"]
        assert identity["key"] in (WHATSAPP.key, TELEGRAM.key, ids["visitor"].key)
        assert card["phones"] == ([PHONE] if identity["key"] == WHATSAPP.key else [])
        assert not card.get("notes") and not card.get("attributes")
        thread = await store.threads.open_for(card["_id"])
        assert thread.previous_thread_id is None
        assert len(await store.messages.for_thread(thread.id)) == 1


def consistent(dump: dict[str, list[dict[str, Any]]], erased: set[ObjectId]) -> list[str]:
    """What ties anything to an erased card, or a message to a card or thread that is not its own."""
    cards = {c["_id"] for c in dump.get("contacts", [])}
    threads = {t["_id"]: t for t in dump.get("threads", [])}
    problems = [f"card {c['_id']} survived" for c in dump.get("contacts", []) if c["_id"] in erased]
    for message in dump.get("messages", []):
        thread = threads.get(message["thread_id"])
        if message["contact_id"] in erased or message["contact_id"] not in cards:
            problems.append(f"message {message.get('text')!r} is on card {message['contact_id']}, which is gone")
        elif thread is None or thread["contact_id"] != message["contact_id"]:
            problems.append(f"message {message.get('text')!r} is in a thread of another card")
    problems += [f"thread #{t['number']} is on an erased card" for t in threads.values() if t["contact_id"] in erased]
    problems += [f"candidate {d['pair']}" for d in dump.get("duplicates", []) if set(d["contact_ids"]) & erased]
    return problems


@pytest.mark.parametrize("erase_at", [0, 5, 20, 39])
async def test_erasure_while_she_keeps_writing_leaves_nothing_behind_and_loses_none_of_the_new(
    gateway: TestClient, erase_at: int
) -> None:
    app = gateway.app
    store, privacy = app[STORE], app[PRIVACY]
    ids = await ann(gateway)
    erased = {ids["kept"], *ids["merged"]}
    messages = [
        m for n in range(20) for m in (inbound(TELEGRAM, f"5001:r{n}", f"tg {n}"), from_whatsapp(f"SMr{n}", f"wa {n}"))
    ]
    calls: list[Any] = [app[INBOX].on_inbound(m) for m in messages]
    calls += [app[INBOX].on_inbound(m) for m in messages[::4]]  # re-delivered webhooks, racing the originals
    calls.insert(erase_at, privacy.erase(ids["kept"], via="api"))
    results = await asyncio.gather(*calls)
    await settle(app)
    assert results[erase_at].record is not None
    await privacy.sweep_again()  # what the privacy loop does next
    await settle(app)

    dump = await database(gateway)
    assert consistent(dump, erased) == []
    # Each message stored now is on the fresh card of its own identity, once; the others went with her past.
    stored = [m for m in dump["messages"] if m["direction"] == "in"]
    assert len(stored) == len({m["channel_message_id"] for m in stored})
    owners = {i["key"]: c["_id"] for c in dump["contacts"] for i in c["identities"]}
    assert all(owners[m["identity"]] == m["contact_id"] for m in stored)
    assert await store.threads.collection.count_documents({"open": True}) <= 2


async def test_a_message_stored_after_the_erasure_swept_is_swept_by_the_privacy_loop(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Her sender was looked up just before the erasure began, and the message is stored after its sweep."""
    app = gateway.app
    store = app[STORE]
    ids = await ann(gateway)
    touched, erased = asyncio.Event(), asyncio.Event()
    touch_open = store.threads.touch_open

    async def touch_then_wait(*args: Any) -> Any:
        thread = await touch_open(*args)
        touched.set()
        await erased.wait()
        return thread

    assert await store.threads.open_for(ids["kept"]) is not None  # the fast path touches it
    monkeypatch.setattr(store.threads, "touch_open", touch_then_wait)
    late = asyncio.ensure_future(app[INBOX].on_inbound(from_whatsapp("SM3", "written as she was erased")))
    await touched.wait()
    monkeypatch.setattr(store.threads, "touch_open", touch_open)
    result = await app[PRIVACY].erase(ids["kept"], via="api")
    erased.set()
    stored = await late
    assert result.record is not None and stored.contact_id == ids["kept"]  # left behind, for a moment

    async def swept() -> bool:
        return await store.messages.get(stored.id) is None

    await eventually(swept, "the privacy loop swept the late message")
    await settle(app)
    assert consistent(await database(gateway), {ids["kept"], *ids["merged"]}) == []


async def test_a_merge_holding_the_card_makes_the_erasure_wait_and_a_card_being_erased_is_merged_with_nothing(
    gateway: TestClient,
) -> None:
    app = gateway.app
    store, merger = app[STORE], app[MERGER]
    first = await writes(gateway, from_whatsapp("SM1", "hello"))
    other = await writes(gateway, inbound(TELEGRAM, "5001:1", "hi"))
    token, now = ObjectId(), utcnow()
    assert await store.contacts.lock(first.contact_id, token, now, now - LOCK_TTL) is not None

    busy = await gateway.delete(f"/api/v1/contacts/{first.contact_id}", headers=AUTH)
    assert busy.status == 409 and "try again" in (await busy.json())["error"]
    assert (
        await store.contacts.get(first.contact_id) is not None
        and await store.erasures.collection.count_documents({}) == 0
    )

    await store.contacts.unlock(first.contact_id, token)
    record = await store.erasures.start(first.contact_id, "api", now, by_operator=None, api_token=None)
    assert await store.contacts.claim_erasure(first.contact_id, record.id, now, now - LOCK_TTL) is not None
    refused = await merger.merge(other.contact_id, first.contact_id, by=None, reason="test")
    assert refused.outcome is MergeOutcome.BUSY
    assert (await store.contacts.get(first.contact_id)).merged_into is None


async def test_an_erasure_stopped_half_way_is_finished_by_the_privacy_loop(gateway: TestClient) -> None:
    app = gateway.app
    store = app[STORE]
    first = await writes(gateway, from_whatsapp("SM1", "hello"))
    card = first.contact_id
    # A process stops after reserving the card and taking its identities off.
    started = utcnow() - LOCK_TTL - timedelta(seconds=1)
    record = await store.erasures.start(card, "api", started, by_operator=None, api_token=None)
    await store.contacts.claim_erasure(card, record.id, started, started - LOCK_TTL)
    await store.erasures.hold(record.id, [card])
    await store.contacts.drop_identities(card, record.id)

    async def finished() -> bool:
        return await store.erasures.of_contact(card) is not None

    await eventually(finished, "the privacy loop finished the erasure")
    assert await store.contacts.get(card) is None and await store.messages.collection.count_documents({}) == 0
    assert (await store.threads.get(first.thread_id)).erased_at is not None
