"""privacy.retention_days: closed conversations past it are deleted (or kept as timings only), a few at a time,
by the privacy loop of the real app; every query the privacy code sends is served by an index."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo import monitoring

from channels.base import InboundMessage
from gateway.app import create_app
from gateway.keys import CONVERSATIONS, INBOX, PRIVACY, SETTINGS, STORE
from gateway.model import Content, IdentityRef, Thread, utcnow
from gateway.retention import Retention
from tests.helpers import AUTH, eventually, settle

LONG_AGO = timedelta(days=40)
ROOT = Path(__file__).resolve().parents[2]
PRIVACY_CODE = tuple(str(ROOT / "gateway" / name) for name in ("privacy.py", "retention.py"))


async def conversation(
    gateway: TestClient, visitor: str, *, closed: timedelta | None = None, idle: timedelta | None = None
) -> Thread:
    """A widget visitor's conversation of two messages, closed `closed` ago; their card last changed `idle` ago."""
    app = gateway.app
    store = app[STORE]
    ref = IdentityRef("webwidget", "web", visitor)
    for n in range(2):
        message = await app[INBOX].on_inbound(InboundMessage(ref, f"{visitor}:{n}", Content(text=f"{visitor} {n}")))
    thread = await store.threads.get(message.thread_id)
    assert thread is not None
    if closed is not None:
        await app[CONVERSATIONS].close(thread)
        thread = await store.threads.update(thread.id, {"closed_at": utcnow() - closed})
    if idle is not None:
        await store.contacts.collection.update_one(
            {"_id": message.contact_id}, {"$set": {"updated_at": utcnow() - idle}}
        )
    await settle(app)
    assert thread is not None
    return thread


@pytest.fixture
def open_gateway(aiohttp_client: Any, make_settings: Any) -> Any:
    """The real app with retention on; its own loop runs a round at start-up, then sleeps an hour."""

    async def start(**privacy: Any) -> TestClient:
        settings = make_settings(privacy={"retention_days": 30, "interval_seconds": 3600, **privacy})
        return await aiohttp_client(create_app(settings))

    return start


def rounds(gateway: TestClient) -> Retention:
    """The privacy loop's rounds, to run one at a time."""
    app = gateway.app
    return Retention(app[STORE], app[PRIVACY], app[SETTINGS].privacy)


async def test_conversations_closed_before_the_retention_period_are_deleted_a_batch_at_a_time(
    open_gateway: Any,
) -> None:
    gateway = await open_gateway(batch_size=2)
    store = gateway.app[STORE]
    gone = [
        await conversation(gateway, f"old{n}", closed=LONG_AGO + timedelta(hours=n), idle=LONG_AGO) for n in range(2)
    ]
    # Her card changed lately (the website told us her name): her last conversation goes, her card stays.
    recently_named = await conversation(gateway, "named", closed=LONG_AGO, idle=timedelta(days=1))
    recent = await conversation(gateway, "recent", closed=timedelta(days=29))
    still_open = await conversation(gateway, "open", idle=LONG_AGO)

    assert await rounds(gateway).round() is True  # a full batch: the oldest two, more to do
    assert {t.id for t in gone} & {t["_id"] for t in await store.threads.collection.find().to_list()} == set()
    assert await rounds(gateway).round() is False
    assert await rounds(gateway).round() is False  # nothing more: a no-op

    left = {t["_id"] for t in await store.threads.collection.find().to_list()}
    assert left == {recent.id, still_open.id}
    assert {m["thread_id"] for m in await store.messages.collection.find().to_list()} == left
    # A card whose last conversation went, and that did not change since, is erased by the same rules as on request.
    cards = {c["_id"] for c in await store.contacts.collection.find().to_list()}
    assert cards == {recently_named.contact_id, recent.contact_id, still_open.contact_id}
    audits = await store.erasures.collection.find().to_list()
    assert sorted(a["contact_id"] for a in audits) == sorted(t.contact_id for t in gone)
    assert {a["via"] for a in audits} == {"retention"}
    assert (await gateway.get(f"/api/v1/threads/{gone[0].number}", headers=AUTH)).status == 404


async def test_with_anonymize_expired_conversations_are_kept_as_timings_only(open_gateway: Any) -> None:
    gateway = await open_gateway(anonymize=True)
    store = gateway.app[STORE]
    old = await conversation(gateway, "old", closed=LONG_AGO, idle=LONG_AGO)
    await store.threads.update(old.id, {"first_response_at": old.created_at + timedelta(seconds=30)})
    recent = await conversation(gateway, "recent", closed=timedelta(days=1))
    start, end = old.created_at - timedelta(hours=1), old.created_at + timedelta(hours=1)
    before = await store.threads.spans("created_at", "created_at", "first_response_at", start, end)

    assert await rounds(gateway).round() is False
    assert await rounds(gateway).round() is False  # what is anonymized is not done again

    kept = await store.threads.get(old.id)
    assert kept is not None and kept.erased_at is not None and kept.contact_id != old.contact_id
    assert (kept.created_at, kept.closed_at, kept.number) == (old.created_at, old.closed_at, old.number)
    assert await store.threads.spans("created_at", "created_at", "first_response_at", start, end) == before
    stripped = await store.messages.collection.find({"thread_id": old.id}).to_list()
    assert len(stripped) == 2
    for message in stripped:
        assert message["text"] == "" and "identity" not in message and "channel_message_id" not in message
        assert message["contact_id"] == kept.contact_id and message["direction"] == "in"
    assert await store.contacts.get(old.contact_id) is None  # the card had nothing else
    assert [m.content.text for m in await store.messages.for_thread(recent.id)] == ["recent 0", "recent 1"]
    # A visitor coming back with the same identity sees none of it.
    assert await store.messages.recent_for_identity(IdentityRef("webwidget", "web", "old").key, limit=10) == []


async def test_the_apps_own_privacy_loop_expires_conversations(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(privacy={"retention_days": 1, "interval_seconds": 0.05})
    gateway = await aiohttp_client(create_app(settings))
    store = gateway.app[STORE]
    old = await conversation(gateway, "old", closed=timedelta(days=2))

    async def expired() -> bool:
        return await store.threads.get(old.id) is None

    await eventually(expired, "the privacy loop deleted the conversation")
    assert await store.messages.collection.count_documents({"thread_id": old.id}) == 0


# -- every query the privacy code sends is served by an index ---------------------------------------


class Recorder(monitoring.CommandListener):
    """Filtered commands sent from the privacy code while `on`, one example per collection and filter shape."""

    def __init__(self) -> None:
        self.on = False
        self.shapes: dict[str, dict[str, Any]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on or event.command_name not in ("find", "count", "findAndModify", "update", "delete"):
            return
        frame = inspect.currentframe()
        while frame is not None and frame.f_code.co_filename not in PRIVACY_CODE:
            frame = frame.f_back
        if frame is None:
            return
        body = {k: v for k, v in event.command.items() if not k.startswith("$") and k not in ("lsid", "txnNumber")}
        for query, example in statements(event.command_name, body):
            key = f"{event.command[event.command_name]} {json.dumps(shape(query), sort_keys=True)}"
            self.shapes.setdefault(key, example)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def statements(name: str, body: dict[str, Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    if name in ("find", "count", "findAndModify"):
        yield body.get("filter", body.get("query")) or {}, body
    else:
        many = "updates" if name == "update" else "deletes"
        for statement in body.get(many) or []:
            yield statement.get("q") or {}, {**body, many: [statement]}


def shape(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value if isinstance(v, Mapping)] or "?"
    return "?"


def stages(plan: Any) -> Iterator[str]:
    if isinstance(plan, Mapping):
        if "stage" in plan:
            yield plan["stage"]
        for value in plan.values():
            yield from stages(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from stages(value)


RECORDER = Recorder()
monitoring.register(RECORDER)  # before any app makes its client: PyMongo tells only clients made later


async def test_every_query_of_erasure_export_and_retention_is_served_by_an_index(open_gateway: Any) -> None:
    from tests.gateway.test_privacy import ann  # a person on three channels, merged

    gateway = await open_gateway(anonymize=False)
    store = gateway.app[STORE]
    RECORDER.shapes.clear()
    RECORDER.on = True
    try:
        ids = await ann(gateway)
        await conversation(gateway, "old", closed=LONG_AGO, idle=LONG_AGO)
        assert (await gateway.get(f"/api/v1/contacts/{ids['kept']}/export", headers=AUTH)).status == 200
        assert (await gateway.delete(f"/api/v1/contacts/{ids['kept']}", headers=AUTH)).status == 200
        assert (await gateway.delete(f"/api/v1/contacts/{ids['kept']}", headers=AUTH)).status == 200
        await rounds(gateway).round()
        await store.threads.update(
            (await store.threads.collection.find_one({"erased_at": {"$ne": None}}))["_id"],
            {"closed_at": utcnow() - LONG_AGO},
        )
        anonymizing = gateway.app[SETTINGS].privacy.model_copy(update={"anonymize": True})
        await Retention(store, gateway.app[PRIVACY], anonymizing).round()
    finally:
        RECORDER.on = False
    assert len(RECORDER.shapes) > 15
    scans = []
    for key, example in sorted(RECORDER.shapes.items()):
        reply = await store.db.command({"explain": example, "verbosity": "queryPlanner"})
        if "COLLSCAN" in list(stages(reply)):
            scans.append(key)
    assert scans == [], "\n".join(scans)
