"""Merging two cards into one and undoing it, through the real hub, routing and storage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.base import InboundMessage, Profile
from gateway.app import create_app
from gateway.conversations import Draft
from gateway.events import (
    ContactsMerged,
    ContactsUnmerged,
    DuplicateFound,
    ThreadAssigned,
    ThreadClosed,
)
from gateway.keys import BUS, CONVERSATIONS, DUPLICATES, INBOX, MERGER, PROFILES, SETTINGS, STORE
from gateway.merge import LOCK_TTL, MergeOutcome
from gateway.model import (
    Content,
    Direction,
    IdentityRef,
    Note,
    Notice,
    OperatorStatus,
    Role,
    to_doc,
    utcnow,
)
from gateway.storage.duplicates import DuplicateStatus
from gateway.storage.merges import MergeStatus
from operators.presence import Presence
from operators.routing import Routing
from tests.helpers import PHONE, TELEGRAM, WHATSAPP, collect, from_whatsapp, inbound, settle, telegram_share

SUPERVISOR = 9


async def writes(gateway: TestClient, message: InboundMessage):
    stored = await gateway.app[INBOX].on_inbound(message)
    await settle(gateway.app)
    return stored


class Desk:
    """Routing and presence over the running app, as the operator set-up wires them."""

    def __init__(self, gateway: TestClient) -> None:
        app = gateway.app
        self.store, self.inbox, self.merger = app[STORE], app[INBOX], app[MERGER]
        self.conversations, self.profiles = app[CONVERSATIONS], app[PROFILES]
        self.router = Routing(app[STORE], app[BUS], app[CONVERSATIONS], app[SETTINGS])
        self.router.subscribe()
        self.presence = Presence(app[STORE], app[BUS])

    async def operator(self, operator_id: int, *, online: bool = True, **fields: Any) -> None:
        await self.store.operators.upsert(operator_id, name=fields.pop("name", f"Op {operator_id}"), **fields)
        if online:
            await self.presence.set_status(operator_id, OperatorStatus.ONLINE)

    async def card(self, ref: IdentityRef):
        return await self.store.contacts.by_identity(ref.key)

    async def thread(self, ref: IdentityRef):
        return await self.store.threads.open_for((await self.store.contacts.owner(ref.key)).id)


@pytest.fixture
async def desk(gateway: TestClient) -> Desk:
    desk = Desk(gateway)
    await desk.operator(SUPERVISOR, online=False, role=Role.SUPERVISOR.value)
    return desk


async def two_cards(gateway: TestClient, desk: Desk):
    """Ann on WhatsApp (older card, operator 1) and on Telegram (operator 2), found as duplicates."""
    found = collect(gateway.app, DuplicateFound)
    await desk.operator(1)
    await writes(gateway, from_whatsapp("SM1", "my order is late"))
    await desk.operator(2)
    await writes(gateway, telegram_share())
    await writes(gateway, inbound(TELEGRAM, "5001:2", "it is order 1234"))
    assert len(found) == 1
    return await desk.card(WHATSAPP), await desk.card(TELEGRAM), found[0].duplicate


async def test_pressing_merge_leaves_one_card_with_everything(gateway: TestClient, desk: Desk) -> None:
    merged_events, closed_events = collect(gateway.app, ContactsMerged), collect(gateway.app, ThreadClosed)
    store, profiles = desk.store, desk.profiles
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    await profiles.update_contact(whatsapp_card, email="ann@example.com", attributes={"plan": "pro", "city": "SF"})
    await profiles.update_contact(
        telegram_card, name="Ann Lee", email="ann.lee@work.example", attributes={"plan": "free", "vip": True}
    )
    await store.contacts.add_note(whatsapp_card.id, Note(1, "Op 1", "prefers e-mail", utcnow()))
    await store.contacts.add_note(telegram_card.id, Note(2, "Op 2", "asked about refunds", utcnow()))
    whatsapp_thread, telegram_thread = await desk.thread(WHATSAPP), await desk.thread(TELEGRAM)
    assert (whatsapp_thread.operator_id, telegram_thread.operator_id) == (1, 2)

    result = await desk.merger.merge_duplicate(duplicate.id, by=2)
    await settle(gateway.app)

    assert result.outcome is MergeOutcome.MERGED
    kept = await store.contacts.get(whatsapp_card.id)  # the older card is kept
    assert result.contact.id == kept.id
    assert {i.key for i in kept.identities} == {WHATSAPP.key, TELEGRAM.key}
    assert kept.phones == (PHONE,) and kept.verified_phones == (PHONE,)
    assert set(kept.emails) == {"ann@example.com", "ann.lee@work.example"}
    assert [n.text for n in kept.notes] == ["prefers e-mail", "asked about refunds"]
    assert kept.name == "Ann Lee"
    # Conflicting values are kept side by side, the kept card's first, and nothing is overwritten.
    assert kept.attributes == {"plan": "pro", "city": "SF", "vip": True}
    assert kept.attribute_conflicts == {"plan": ["pro", "free"]}
    gone = await store.contacts.get(telegram_card.id)
    assert gone.merged_into == kept.id and gone.identities == ()
    assert await store.contacts.by_phone(PHONE) == [kept]

    # Both conversations were open: joined into the kept card's, the other closed with a link.
    kept_thread = await store.threads.get(whatsapp_thread.id)
    closed = await store.threads.get(telegram_thread.id)
    assert kept_thread.open and kept_thread.operator_id == 1 and kept_thread.contact_id == kept.id
    assert not closed.open and closed.joined_into == kept_thread.id and closed.contact_id == kept.id
    assert await store.threads.open_for(telegram_card.id) is None
    customer = [m.content.text for m in await store.messages.for_thread(kept_thread.id) if m.direction is Direction.IN]
    assert customer == ["my order is late", "", "it is order 1234"]
    assert await store.messages.collection.distinct("contact_id") == [kept.id]
    values = {"kept": kept_thread.number, "closed": closed.number, "merge": 1}
    assert [m.notice for m in await store.messages.for_thread(closed.id)] == [Notice("merge.joined_into", values)]
    # One operator kept; the other's slot is free and the bot is told whom to inform.
    assert (await store.operators.get(1)).chats == (kept_thread.id,)
    assert (await store.operators.get(2)).chats == ()
    assert len(merged_events) == 1
    event = merged_events[0]
    assert (event.kept_thread.id, event.closed_thread.id, event.closed_thread.operator_id) == (
        kept_thread.id,
        closed.id,
        2,
    )
    assert [e.thread.id for e in closed_events] == [closed.id]

    # The merge is recorded: who, when, why, exactly what moved.
    record = event.merge
    assert (record.number, record.by, record.status) == (1, 2, MergeStatus.DONE)
    assert record.reason == f"same phone {PHONE} (verified on both); names 90% alike"
    assert record.identities == (TELEGRAM.key,) and record.threads == (telegram_thread.id,)
    assert record.added["emails"] == ["ann.lee@work.example"] and record.added["attributes"] == ["vip"]
    assert (await store.duplicates.get(duplicate.id)).status is DuplicateStatus.MERGED

    # The next message from either channel lands in the kept thread.
    for message in (inbound(TELEGRAM, "5001:3", "any news?"), from_whatsapp("SM2", "hello?")):
        stored = await writes(gateway, message)
        assert (stored.thread_id, stored.contact_id) == (kept_thread.id, kept.id)
    assert await store.contacts.collection.count_documents({}) == 2
    assert (await store.threads.get(kept_thread.id)).identity == WHATSAPP.key  # replies go where she wrote last


async def test_the_joined_conversation_keeps_its_operator_when_the_kept_one_waited(
    gateway: TestClient, desk: Desk
) -> None:
    await writes(gateway, from_whatsapp("SM1"))  # nobody online: queued
    await desk.operator(2)
    await writes(gateway, telegram_share())
    waiting, handled = await desk.thread(WHATSAPP), await desk.thread(TELEGRAM)
    assert (waiting.operator_id, handled.operator_id) == (2, 2)  # operator 2 came online and drained the queue
    await desk.store.threads.requeue(waiting.id, 2)
    await desk.store.operators.release_slot(2, waiting.id)

    result = await desk.merger.merge_pair(waiting.contact_id, handled.contact_id, by=SUPERVISOR, reason="same person")
    await settle(gateway.app)

    assert result.ok and result.contact.id == waiting.contact_id
    kept_thread = await desk.store.threads.get(waiting.id)
    assert kept_thread.operator_id == 2 and (await desk.store.operators.get(2)).chats == (kept_thread.id,)


async def test_the_joined_conversations_operator_keeps_it_when_the_kept_one_had_nobody(
    gateway: TestClient, desk: Desk
) -> None:
    assigned = collect(gateway.app, ThreadAssigned)
    _whatsapp_card, _telegram_card, duplicate = await two_cards(gateway, desk)
    waiting = await desk.thread(WHATSAPP)
    await desk.router.transfer(waiting, to_group="nobody-online", by=1)  # the kept card's thread waits
    await settle(gateway.app)
    assert (await desk.store.threads.get(waiting.id)).operator_id is None

    await desk.merger.merge_duplicate(duplicate.id, by=2)
    await settle(gateway.app)

    kept = await desk.store.threads.get(waiting.id)
    assert kept.open and kept.operator_id == 2  # Op 2 was talking to Ann on Telegram: the conversation stays
    assert (await desk.store.operators.get(2)).chats == (kept.id,)
    assert [(e.thread.id, e.operator_id) for e in assigned if e.reason == "merged"] == [(kept.id, 2)]


async def test_merging_twice_or_into_itself_is_a_no_op_with_a_clear_answer(gateway: TestClient, desk: Desk) -> None:
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    merger = desk.merger

    same = await merger.merge(whatsapp_card.id, whatsapp_card.id, by=SUPERVISOR, reason="test")
    assert same.outcome is MergeOutcome.SAME_CONTACT
    assert (await merger.merge_threads(999, 1, by=SUPERVISOR)).outcome is MergeOutcome.UNKNOWN

    results = await asyncio.gather(
        merger.merge_duplicate(duplicate.id, by=1),
        merger.merge_duplicate(duplicate.id, by=2),
        merger.merge(telegram_card.id, whatsapp_card.id, by=SUPERVISOR, reason="the other way round"),
        merger.merge(whatsapp_card.id, telegram_card.id, by=None, reason="again"),
    )
    await settle(gateway.app)
    assert sorted(r.outcome for r in results) == [MergeOutcome.ALREADY_MERGED] * 3 + [MergeOutcome.MERGED]
    winner = next(r for r in results if r.ok).contact
    assert all(r.contact.id == winner.id for r in results)
    refused = next(r for r in results if not r.ok)
    assert refused.outcome is MergeOutcome.ALREADY_MERGED and refused.contact.id == winner.id
    assert await desk.store.merges.collection.count_documents({}) == 1
    live = await desk.store.contacts.collection.find({"merged_into": None}).to_list()
    assert len(live) == 1 and len(live[0]["identities"]) == 2
    again = await merger.merge(whatsapp_card.id, telegram_card.id, by=SUPERVISOR, reason="again")
    assert again.outcome is MergeOutcome.ALREADY_MERGED


async def test_merge_by_thread_numbers_checks_who_asks_and_may_keep_the_newer_card(
    gateway: TestClient, desk: Desk
) -> None:
    whatsapp_card, telegram_card, _ = await two_cards(gateway, desk)
    await desk.operator(3)
    older, newer = await desk.thread(WHATSAPP), await desk.thread(TELEGRAM)

    refused = await desk.merger.merge_threads(older.number, newer.number, by=3)
    assert refused.outcome is MergeOutcome.NOT_ALLOWED
    result = await desk.merger.merge_threads(older.number, newer.number, by=SUPERVISOR, keep=newer.number)
    assert result.ok and result.contact.id == telegram_card.id
    assert result.merge.reason == f"/merge {older.number} {newer.number}" and result.merge.by == SUPERVISOR
    assert (await desk.store.contacts.get(whatsapp_card.id)).merged_into == telegram_card.id


async def test_unmerge_restores_both_cards_plus_what_arrived_since(gateway: TestClient, desk: Desk) -> None:
    unmerged = collect(gateway.app, ContactsUnmerged)
    store, profiles, conversations = desk.store, desk.profiles, desk.conversations
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    await profiles.update_contact(whatsapp_card, attributes={"plan": "pro"})
    await profiles.update_contact(
        telegram_card, name="Ann Lee", email="ann.lee@work.example", attributes={"plan": "free", "vip": True}
    )
    await store.contacts.add_note(telegram_card.id, Note(2, "Op 2", "asked about refunds", utcnow()))
    whatsapp_before = await store.contacts.get(whatsapp_card.id)
    telegram_before = await store.contacts.get(telegram_card.id)
    whatsapp_thread, telegram_thread = await desk.thread(WHATSAPP), await desk.thread(TELEGRAM)
    merge = (await desk.merger.merge_duplicate(duplicate.id, by=1)).merge

    # Life goes on in the joined conversation, on both channels.
    await writes(gateway, inbound(TELEGRAM, "5001:3", "telegram after the merge"))
    await writes(gateway, from_whatsapp("SM2", "whatsapp after the merge"))
    joined = await store.threads.get(whatsapp_thread.id)
    await conversations.send(joined, Draft(Content(text="answer on WhatsApp"), author_id=1))  # where she wrote last
    await writes(gateway, inbound(TELEGRAM, "5001:4", "telegram again"))
    await conversations.send(await store.threads.get(joined.id), Draft(Content(text="answer on Telegram"), author_id=1))

    assert (await desk.merger.unmerge(merge.number, by=1)).outcome is MergeOutcome.NOT_ALLOWED
    result = await desk.merger.unmerge(merge.number, by=SUPERVISOR)
    await settle(gateway.app)
    assert result.outcome is MergeOutcome.UNMERGED
    assert (result.contact.id, result.other.id) == (whatsapp_card.id, telegram_card.id)
    again = await desk.merger.unmerge(merge.id, by=SUPERVISOR)
    assert again.outcome is MergeOutcome.ALREADY_UNDONE

    kept, restored = await store.contacts.get(whatsapp_card.id), await store.contacts.get(telegram_card.id)
    for after, before in ((kept, whatsapp_before), (restored, telegram_before)):
        for name in (
            "name",
            "phones",
            "emails",
            "verified_phones",
            "notes",
            "attributes",
            "attribute_conflicts",
            "merged_into",
            "blocked",
        ):
            assert getattr(after, name) == getattr(before, name), name
        assert [i.key for i in after.identities] == [i.key for i in before.identities]

    # Each card has its own conversation again, with its own messages, including what arrived since.
    kept_thread, restored_thread = await desk.thread(WHATSAPP), await desk.thread(TELEGRAM)
    assert kept_thread.id == whatsapp_thread.id and restored_thread.id == telegram_thread.id
    assert restored_thread.open and restored_thread.joined_into is None
    assert restored_thread.operator_id == 2  # routed again at once (operator 2 is the least busy)

    def texts(messages):
        return [m.content.text for m in messages if m.direction is not Direction.INTERNAL]

    assert texts(await store.messages.for_thread(kept_thread.id)) == [
        "my order is late",
        "whatsapp after the merge",
        "answer on WhatsApp",
    ]
    assert texts(await store.messages.for_thread(restored_thread.id)) == [
        "",
        "it is order 1234",
        "telegram after the merge",
        "telegram again",
        "answer on Telegram",
    ]
    for card, thread in ((kept, kept_thread), (restored, restored_thread)):
        assert {m["contact_id"] for m in await store.messages.collection.find({"thread_id": thread.id}).to_list()} == {
            card.id
        }
    assert (await store.duplicates.get(duplicate.id)).status is DuplicateStatus.DISMISSED
    assert len(unmerged) == 1 and unmerged[0].restored_thread.id == restored_thread.id
    assert (await store.merges.get(merge.id)).undone_by == SUPERVISOR

    # And the next Telegram message goes to the restored card.
    stored = await writes(gateway, inbound(TELEGRAM, "5001:5", "hello again"))
    assert (stored.contact_id, stored.thread_id) == (restored.id, restored_thread.id)


async def test_auto_merge_verified_merges_a_phone_both_channels_vouch_for(
    aiohttp_client: Any, make_settings: Any
) -> None:
    gateway = await aiohttp_client(create_app(make_settings(contacts={"auto_merge_verified": True})))
    desk = Desk(gateway)
    offers, merged = collect(gateway.app, DuplicateFound), collect(gateway.app, ContactsMerged)
    await writes(gateway, from_whatsapp("SM1"))
    await writes(gateway, inbound(IdentityRef("webwidget", "web", "v1"), "v1:1", profile=Profile(phone=PHONE)))
    assert len(offers) == 1 and merged == []  # typed into the widget: not verified, only a duplicate

    await writes(gateway, telegram_share())
    assert len(offers) == 1 and len(merged) == 1
    record = merged[0].merge
    assert (record.by, record.reason) == (None, "verified phone on both channels")
    kept = await desk.store.contacts.owner(TELEGRAM.key)
    assert kept.id == (await desk.card(WHATSAPP)).id
    assert (await desk.store.contacts.get(record.other_id)).merged_into == kept.id
    assert (await desk.card(IdentityRef("webwidget", "web", "v1"))).merged_into is None


@pytest.mark.parametrize(
    ("merge_at", "kept_closed"), [(0, False), (7, False), (30, False), (59, False), (0, True), (30, True)]
)
async def test_messages_arriving_during_a_merge_are_neither_lost_nor_duplicated(
    gateway: TestClient, desk: Desk, merge_at: int, kept_closed: bool
) -> None:
    store, inbox, conversations = desk.store, desk.inbox, desk.conversations
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    if kept_closed:  # the other card's open thread is handed over (or joined, if the kept card reopens one)
        await conversations.close(await desk.thread(WHATSAPP), by=1)
    before = await store.messages.collection.count_documents({"direction": "in"})
    messages = [
        m for n in range(30) for m in (inbound(TELEGRAM, f"5001:c{n}", f"tg {n}"), from_whatsapp(f"SMc{n}", f"wa {n}"))
    ]
    calls = [inbox.on_inbound(m) for m in messages]
    calls += [inbox.on_inbound(m) for m in messages[::5]]  # re-delivered webhooks, racing the originals
    calls.insert(merge_at, desk.merger.merge_duplicate(duplicate.id, by=SUPERVISOR))
    calls.insert(merge_at + 3, desk.merger.merge(telegram_card.id, whatsapp_card.id, by=None, reason="twice"))
    results = await asyncio.gather(*calls)
    await settle(gateway.app)

    outcomes = [r.outcome for r in results if hasattr(r, "outcome")]
    # The racing second merge finds the pair merged, or still locked by the first: both are clear no-ops.
    assert len(outcomes) == 2 and outcomes.count(MergeOutcome.MERGED) == 1
    assert set(outcomes) - {MergeOutcome.MERGED} <= {MergeOutcome.ALREADY_MERGED, MergeOutcome.BUSY}
    again = await desk.merger.merge(telegram_card.id, whatsapp_card.id, by=None, reason="twice")
    assert again.outcome is MergeOutcome.ALREADY_MERGED
    kept = await store.contacts.owner(WHATSAPP.key)
    assert kept.id == (await store.contacts.owner(TELEGRAM.key)).id
    assert {i.key for i in kept.identities} == {WHATSAPP.key, TELEGRAM.key}
    assert await store.contacts.collection.count_documents({"merged_into": None}) == 1
    thread = await store.threads.open_for(kept.id)
    assert await store.threads.collection.count_documents({"open": True}) == 1
    stored = await store.messages.collection.find({"direction": "in"}).to_list()
    ids = [m["channel_message_id"] for m in stored]
    assert len(ids) == len(set(ids)) == before + len(messages)
    assert {m["contact_id"] for m in stored} == {kept.id}
    new = {m.message_id for m in messages}
    assert {m["thread_id"] for m in stored if m["channel_message_id"] in new} == {thread.id}
    assert (await store.threads.get(thread.id)).operator_id is not None


async def test_a_message_stored_after_the_merge_moved_the_cards_messages_is_moved_too(
    gateway: TestClient, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The known-customer path does not ask Merger.follow: the merge's last sweep must catch it."""
    store = desk.store
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    touched, moved = asyncio.Event(), asyncio.Event()
    touch_open, give_all = store.threads.touch_open, store.messages.give_all
    pull_identity = store.contacts.pull_identity

    async def touch_then_wait(*args: Any) -> Any:
        thread = await touch_open(*args)
        touched.set()
        await moved.wait()  # the merge joins the thread and moves its messages before this one is stored
        return thread

    async def give_all_once(*args: Any) -> int:
        count = await give_all(*args)
        moved.set()
        return count

    async def pull_after_the_message(*args: Any) -> Any:
        await message_task
        return await pull_identity(*args)

    monkeypatch.setattr(store.threads, "touch_open", touch_then_wait)
    monkeypatch.setattr(store.messages, "give_all", give_all_once)
    monkeypatch.setattr(store.contacts, "pull_identity", pull_after_the_message)
    message_task = asyncio.ensure_future(desk.inbox.on_inbound(inbound(TELEGRAM, "5001:3", "hello?")))
    await touched.wait()
    result = await desk.merger.merge_duplicate(duplicate.id, by=SUPERVISOR)
    await settle(gateway.app)

    assert result.outcome is MergeOutcome.MERGED and result.contact.id == whatsapp_card.id != telegram_card.id
    late = await store.messages.get((await message_task).id)
    kept_thread = await store.threads.open_for(whatsapp_card.id)
    assert (late.contact_id, late.thread_id) == (whatsapp_card.id, kept_thread.id)
    assert await store.messages.collection.count_documents({"contact_id": telegram_card.id}) == 0


async def test_messages_arriving_during_an_unmerge_follow_their_identity(gateway: TestClient, desk: Desk) -> None:
    store, inbox = desk.store, desk.inbox
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    merge = (await desk.merger.merge_duplicate(duplicate.id, by=1)).merge
    messages = [
        m for n in range(30) for m in (inbound(TELEGRAM, f"5001:u{n}", f"tg {n}"), from_whatsapp(f"SMu{n}", f"wa {n}"))
    ]
    calls = [inbox.on_inbound(m) for m in messages]
    calls.insert(10, desk.merger.unmerge(merge.number, by=SUPERVISOR))
    results = await asyncio.gather(*calls)
    await settle(gateway.app)

    assert results[10].outcome is MergeOutcome.UNMERGED
    owners = {WHATSAPP.key: whatsapp_card.id, TELEGRAM.key: telegram_card.id}
    stored = await store.messages.collection.find({"direction": "in"}).to_list()
    assert len(stored) == len({m["channel_message_id"] for m in stored}) == 3 + len(messages)
    for message in stored:
        assert message["contact_id"] == owners[message["identity"]]
        thread = await store.threads.get(message["thread_id"])
        assert thread.contact_id == owners[message["identity"]] and thread.open


async def test_a_merge_stopped_half_way_is_finished_and_folds_in_the_card_a_message_created(
    gateway: TestClient, desk: Desk
) -> None:
    store = desk.store
    whatsapp_card, telegram_card, _ = await two_cards(gateway, desk)
    # A process stops right after taking the Telegram identity off its card, before putting it on the kept one.
    now = utcnow()
    record = await store.merges.start(whatsapp_card.id, telegram_card.id, 1, "same phone", now)
    await store.contacts.lock(whatsapp_card.id, record.id, now, now - LOCK_TTL)
    marked = await store.contacts.mark_merged(telegram_card.id, whatsapp_card.id, record.id, now, now - LOCK_TTL)
    await store.merges.update(
        record.id, {"other_before": to_doc(marked), "created_at": now - LOCK_TTL - timedelta(seconds=1)}
    )
    assert (await store.contacts.pull_identity(telegram_card.id, TELEGRAM.key)).key == TELEGRAM.key
    # Meanwhile she writes on Telegram: the identity is on no card, so the hub makes a fresh one.
    stray_message = await writes(gateway, inbound(TELEGRAM, "5001:9", "is anyone there?"))
    stray = await desk.card(TELEGRAM)
    assert stray.id not in (whatsapp_card.id, telegram_card.id)

    assert await desk.merger.recover() == 1  # what start-up runs
    await settle(gateway.app)

    kept = await store.contacts.get(whatsapp_card.id)
    assert {i.key for i in kept.identities} == {WHATSAPP.key, TELEGRAM.key}
    assert (await store.contacts.get(stray.id)).merged_into == kept.id
    done = await store.merges.get(record.id)
    assert done.status is MergeStatus.DONE and done.strays == (stray.id,)
    thread = await store.threads.open_for(kept.id)
    moved = await store.messages.get(stray_message.id)
    assert (moved.contact_id, moved.thread_id) == (kept.id, thread.id)
    assert await store.threads.collection.count_documents({"open": True}) == 1
    assert await store.contacts.collection.count_documents({"merged_into": None}) == 1
    assert (await store.contacts.collection.find_one({"_id": kept.id}))["merge_lock"] is None


async def test_open_and_dismissed_candidates_of_the_merged_card_carry_over(gateway: TestClient, desk: Desk) -> None:
    store, profiles = desk.store, desk.profiles
    whatsapp_card, telegram_card, duplicate = await two_cards(gateway, desk)
    widget_card = await profiles.contact_for(IdentityRef("webwidget", "web", "v1"))
    shop_card = await profiles.contact_for(IdentityRef("webwidget", "web", "v2"))
    await profiles.update_contact(telegram_card, email="ann@example.com")
    await profiles.update_contact(widget_card, email="ann@example.com")
    await profiles.update_contact(shop_card, name="Ann's shop", email="ann@example.com")
    await settle(gateway.app)
    not_her = await store.duplicates.for_pair(telegram_card.id, shop_card.id)
    await gateway.app[DUPLICATES].dismiss(not_her.id, by=SUPERVISOR)

    assert (await desk.merger.merge_duplicate(duplicate.id, by=1)).ok

    kept = whatsapp_card.id
    assert (await store.duplicates.for_pair(kept, widget_card.id)).status is DuplicateStatus.OPEN
    assert (await store.duplicates.for_pair(kept, shop_card.id)).status is DuplicateStatus.DISMISSED
    assert {frozenset(o.duplicate.contact_ids) for o in await gateway.app[DUPLICATES].pending()} == {
        frozenset((kept, widget_card.id)),
        frozenset((widget_card.id, shop_card.id)),
    }
