"""Assignment by online status and capacity, the queue, release and transfer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from channels.base import InboundMessage
from gateway.config import OperatorEntry
from gateway.events import ThreadAssigned
from gateway.keys import BUS, CONVERSATIONS, INBOX, SETTINGS, STORE
from gateway.model import (
    Author,
    Content,
    Direction,
    IdentityRef,
    Kind,
    Notice,
    OperatorStatus,
    ThreadStatus,
    utcnow,
)
from operators.presence import Presence
from operators.routing import Routing
from tests.helpers import settle


@pytest.fixture
async def desk(gateway: TestClient):
    """Routing and presence over the running app, as the operator set-up wires them."""
    app = gateway.app
    router = Routing(app[STORE], app[BUS], app[CONVERSATIONS], app[SETTINGS])
    router.subscribe()
    return router, Presence(app[STORE], app[BUS]), app[STORE], app[CONVERSATIONS]


async def customer_writes(gateway: TestClient, who: str, text: str = "hello", n: int = 1):
    ref = IdentityRef("webwidget", "web", who)
    message = await gateway.app[INBOX].on_inbound(
        InboundMessage(sender=ref, message_id=f"{who}:{text}:{n}", content=Content(Kind.TEXT, text))
    )
    await settle(gateway.app)
    return await gateway.app[STORE].threads.get(message.thread_id)


async def add_operator(store, presence, operator_id: int, *, online: bool = True, **fields):
    await store.operators.upsert(operator_id, name=fields.pop("name", f"Op {operator_id}"), **fields)
    if online:
        await presence.set_status(operator_id, OperatorStatus.ONLINE)


async def test_offline_operator_is_never_assigned_and_busy_notice_is_sent_once(gateway, desk) -> None:
    _router, presence, store, _ = desk
    await add_operator(store, presence, 1, online=False)
    thread = await customer_writes(gateway, "ann", "first")
    await customer_writes(gateway, "ann", "second")
    thread = await store.threads.get(thread.id)
    assert thread.status is ThreadStatus.QUEUED and thread.operator_id is None
    system = [m for m in await store.messages.for_thread(thread.id) if m.author is Author.SYSTEM]
    assert len(system) == 1 and system[0].direction is Direction.OUT and "busy" in system[0].content.text


async def test_least_busy_online_operator_gets_the_conversation(gateway, desk) -> None:
    _router, presence, store, _ = desk
    await add_operator(store, presence, 1)
    first = await customer_writes(gateway, "ann")
    assert (await store.threads.get(first.id)).operator_id == 1
    await add_operator(store, presence, 2)
    second = await customer_writes(gateway, "bob")
    assert (await store.threads.get(second.id)).operator_id == 2  # 1 already has a chat
    # Equal load: the one who waited longest since their last assignment (1, assigned first).
    third = await customer_writes(gateway, "cid")
    assert (await store.threads.get(third.id)).operator_id == 1


async def test_groups_limit_who_may_take_a_thread(gateway, desk) -> None:
    router, presence, store, _ = desk
    await add_operator(store, presence, 1, groups=["support"])
    await add_operator(store, presence, 2, groups=["sales"])
    thread = await customer_writes(gateway, "ann")
    await store.threads.update(thread.id, {"operator_id": None, "status": "queued", "group": "sales"})
    await store.operators.release_slot(thread.operator_id, thread.id)
    assert await router.drain() == 1
    assert (await store.threads.get(thread.id)).operator_id == 2


async def test_concurrent_assignments_never_double_assign_or_exceed_capacity(gateway, desk) -> None:
    router, presence, store, _conversations = desk
    for operator_id in (1, 2, 3):
        await add_operator(store, presence, operator_id, online=False, max_chats=2)
    threads = [await customer_writes(gateway, f"c{n}") for n in range(30)]
    for operator_id in (1, 2, 3):
        await store.operators.set_status(operator_id, OperatorStatus.ONLINE, utcnow())

    # Every thread is fought over by several assigners at once, plus three draining routers.
    attempts = [router.assign(t) for t in threads for _ in range(4)] + [router.drain() for _ in range(3)]
    await asyncio.gather(*attempts)
    await settle(gateway.app)

    assigned = [t for t in await store.threads.find(limit=100) if t.operator_id is not None]
    assert len(assigned) == 6
    operators = {o.id: o for o in await store.operators.all()}
    for operator in operators.values():
        assert len(operator.chats) <= 2
        assert len(set(operator.chats)) == len(operator.chats)
        assert sorted(operator.chats) == sorted(t.id for t in assigned if t.operator_id == operator.id)


async def test_queue_drains_longest_waiting_first_when_someone_comes_online(gateway, desk) -> None:
    _router, presence, store, conversations = desk
    await add_operator(store, presence, 1, online=False, max_chats=2)
    waiting = [await customer_writes(gateway, who) for who in ("first", "second", "third")]
    await presence.set_status(1, OperatorStatus.ONLINE)
    await settle(gateway.app)
    owners = [(await store.threads.get(t.id)).operator_id for t in waiting]
    assert owners == [1, 1, None]

    await conversations.close(await store.threads.get(waiting[0].id), by=1)
    await settle(gateway.app)
    assert (await store.threads.get(waiting[2].id)).operator_id == 1
    assert len((await store.operators.get(1)).chats) == 2


async def test_reopened_conversation_goes_back_to_its_last_operator(gateway, desk) -> None:
    _router, presence, store, conversations = desk
    await add_operator(store, presence, 1)
    first = await customer_writes(gateway, "ann", "problem one")
    await add_operator(store, presence, 2)  # idle, so would win on load
    await conversations.close(await store.threads.get(first.id), by=1)
    await settle(gateway.app)
    again = await customer_writes(gateway, "ann", "problem two")
    assert again.id != first.id and (await store.threads.get(again.id)).operator_id == 1


async def test_going_offline_hands_conversations_over_with_a_note(gateway, desk) -> None:
    _router, presence, store, _ = desk
    released: list[ThreadAssigned] = []

    async def watch(event: ThreadAssigned) -> None:
        released.append(event)

    gateway.app[BUS].subscribe(ThreadAssigned, watch)
    await add_operator(store, presence, 1, max_chats=5)
    threads = [await customer_writes(gateway, who) for who in ("a", "b")]
    await add_operator(store, presence, 2, max_chats=1)
    await presence.set_status(1, OperatorStatus.OFFLINE)
    await settle(gateway.app)

    owners = sorted([(await store.threads.get(t.id)).operator_id or 0 for t in threads])
    assert owners == [0, 2]  # one moved to operator 2 (capacity 1), one waits in the queue
    assert (await store.operators.get(1)).chats == ()
    for thread in threads:
        notes = [m.notice for m in await store.messages.for_thread(thread.id) if m.direction is Direction.INTERNAL]
        assert notes == [Notice("released.offline", {"operator": "Op 1"})]
    assert {e.reason for e in released if e.previous_operator_id == 1} == {"released"}


async def test_away_past_the_grace_period_releases_conversations(gateway, desk) -> None:
    router, presence, store, _ = desk
    await add_operator(store, presence, 1)
    thread = await customer_writes(gateway, "ann")
    await presence.set_status(1, OperatorStatus.AWAY)
    await router.release_lapsed()
    assert (await store.threads.get(thread.id)).operator_id == 1  # still within the grace period

    grace = router.settings.routing.offline_grace_seconds
    await store.operators.update(1, {"status_since": utcnow() - timedelta(seconds=grace + 1)})
    await router.release_lapsed()
    assert (await store.threads.get(thread.id)).status is ThreadStatus.QUEUED


async def test_transfer_to_an_operator_respects_status_and_capacity(gateway, desk) -> None:
    router, presence, store, _conversations = desk
    await add_operator(store, presence, 1)
    thread = await store.threads.get((await customer_writes(gateway, "ann")).id)
    await add_operator(store, presence, 2, online=False)
    target = await store.operators.get(2)
    assert (await router.transfer(thread, to_operator=target, by=1)).error == "not_available"

    await presence.set_status(2, OperatorStatus.ONLINE)
    outcome = await router.transfer(thread, to_operator=await store.operators.get(2), comment="VIP, knows Bob", by=1)
    assert outcome.error is None and outcome.thread.operator_id == 2
    assert (await store.operators.get(1)).chats == () and (await store.operators.get(2)).chats == (thread.id,)
    moved = await store.threads.get(thread.id)
    assert moved.transfers[0].from_operator == 1 and moved.transfers[0].comment == "VIP, knows Bob"
    notes = [m for m in await store.messages.for_thread(thread.id) if m.direction is Direction.INTERNAL]
    assert [n.content.text for n in notes] == ["VIP, knows Bob"]
    assert [m.content.text for m in await gateway.app[INBOX].history(IdentityRef("webwidget", "web", "ann"))] == [
        "hello"
    ]

    await add_operator(store, presence, 3, max_chats=1)
    await customer_writes(gateway, "bob")  # fills operator 3
    full = await store.operators.get(3)
    assert len(full.chats) == 1
    assert (await router.transfer(moved, to_operator=full)).error == "not_available"


async def test_transfer_to_a_group(gateway, desk) -> None:
    router, presence, store, _ = desk
    await add_operator(store, presence, 1, groups=["support"])
    thread = await store.threads.get((await customer_writes(gateway, "ann")).id)
    await add_operator(store, presence, 2, groups=["billing"])
    outcome = await router.transfer(thread, to_group="billing", by=1)
    assert outcome.thread.operator_id == 2 and outcome.thread.group == "billing"


async def test_take_next_and_blocked_customers(gateway, desk) -> None:
    router, presence, store, conversations = desk
    await add_operator(store, presence, 1, online=False, max_chats=1)
    older = await customer_writes(gateway, "older")
    await customer_writes(gateway, "newer")
    operator = await store.operators.get(1)
    assert (await router.take_next(operator)).error == "not_available"  # offline
    await store.operators.set_status(1, OperatorStatus.ONLINE, utcnow())
    outcome = await router.take_next(await store.operators.get(1))
    assert outcome.thread.id == older.id and outcome.thread.operator_id == 1
    assert (await router.take_next(await store.operators.get(1))).error == "not_available"  # full

    blocked = await customer_writes(gateway, "spammer")
    await store.contacts.set_blocked(blocked.contact_id, True, utcnow())
    await conversations.close(await store.threads.get(blocked.id))
    await settle(gateway.app)
    again = await customer_writes(gateway, "spammer", "more spam")
    assert again.id == blocked.id and not again.open and again.operator_id is None
    assert [m.content.text for m in await store.messages.for_thread(blocked.id) if m.direction is Direction.IN] == [
        "hello",
        "more spam",
    ]


async def test_queue_wait_ends_at_the_first_assignment(gateway, desk) -> None:
    router, presence, store, _ = desk
    await add_operator(store, presence, 1)
    thread = await store.threads.get((await customer_writes(gateway, "ann")).id)
    await add_operator(store, presence, 2)
    moved = (await router.transfer(thread, to_operator=await store.operators.get(2), by=1)).thread
    assert moved.assigned_at > thread.assigned_at
    assert moved.first_assigned_at == thread.assigned_at == thread.first_assigned_at


async def test_config_sync_keeps_changes_made_in_the_bot_until_the_file_changes(gateway) -> None:
    store = gateway.app[STORE]
    settings = gateway.app[SETTINGS]
    entry = OperatorEntry(telegram_id=7, name="Vera", username="@Vera", max_chats=2)
    await store.operators.sync_config((entry,))
    await store.operators.update(7, {"max_chats": 6, "role": "supervisor"})  # a supervisor's /operator commands
    await store.operators.sync_config((entry,))  # a restart with the same file
    vera = await store.operators.get(7)
    assert (vera.max_chats, vera.role.value, vera.username) == (6, "supervisor", "vera")

    await store.operators.sync_config((entry.model_copy(update={"max_chats": 3}),))  # the file was edited
    vera = await store.operators.get(7)
    assert (vera.max_chats, vera.role.value) == (3, "operator")
    assert settings.operators == ()
