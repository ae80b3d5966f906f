"""A customer message stored by a process that stopped before relaying it reaches the operator later, once."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from bson import ObjectId

from gateway.keys import LEASES, SETTINGS
from gateway.model import Content, Direction, utcnow
from operators.keys import MIRROR_QUEUE, OPERATOR_BOT
from operators.mirror import Mirror
from operators.sweep import GIVE_UP, RelaySweep
from tests.emulators.telegram import TelegramEmulator
from tests.helpers import settle
from tests.operators.conftest import OLGA, SAM, SUPERVISORS, Desk, OpenDesk, open_forum

LAG = timedelta(minutes=2)


def sweep_of(desk: Desk) -> RelaySweep:
    return RelaySweep(desk.store, desk.app[OPERATOR_BOT].relay, desk.app[LEASES], LAG)


async def stored_but_never_relayed(desk: Desk, text: str, by: str = "a process SIGKILLed since") -> ObjectId:
    """What a process that stopped right after storing a customer message leaves behind."""
    [first] = await desk.store.messages.collection.find({"direction": Direction.IN.value}).to_list()
    message = dataclasses.replace(
        await desk.store.messages.get(first["_id"]),
        id=ObjectId(),
        channel_message_id=f"lost-{text}",
        content=Content(text=text),
        created_at=utcnow(),
        stored_by=by,
    )
    await desk.store.messages.insert(message)
    return message.id


async def test_a_message_no_process_relayed_reaches_its_operator_once(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("hello", "c-1")
    lost = await stored_but_never_relayed(desk, "are you there?")
    sweep = sweep_of(desk)

    await sweep.sweep()  # too recent: a relay may still be on its way
    assert not any("are you there?" in t for t in desk.texts(OLGA))

    later = utcnow() + LAG + timedelta(seconds=1)
    assert await sweep.sweep(later) >= 1
    await settle(desk.app)
    assert sum("are you there?" in t for t in desk.texts(OLGA)) == 1
    assert (OLGA, lost) in await desk.store.relay.shown([lost])

    await desk.store.leases.record_progress("relay-sweep", desk.app[LEASES].holder, None)  # sweep it all again
    await sweep.sweep(later)
    await settle(desk.app)
    assert sum("are you there?" in t for t in desk.texts(OLGA)) == 1
    assert sum(t.endswith("hello") for t in desk.texts(OLGA)) == 1  # relayed when it came: not again


async def test_a_message_its_running_process_has_yet_to_relay_is_left_to_it(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("hello", "c-1")
    # Stored by this (running) process, still waiting in its queue to the operator.
    waiting = await stored_but_never_relayed(desk, "in the queue", by=desk.app[LEASES].holder)
    sweep = sweep_of(desk)
    assert await sweep.sweep(utcnow() + LAG + timedelta(seconds=1)) == 1  # past "hello", stopped before it
    await settle(desk.app)
    assert not any("in the queue" in t for t in desk.texts(OLGA))
    # Half an hour on, it is not coming from there: the sweep shows it.
    await sweep.sweep(utcnow() + GIVE_UP + LAG)
    await settle(desk.app)
    assert sum("in the queue" in t for t in desk.texts(OLGA)) == 1
    assert (OLGA, waiting) in await desk.store.relay.shown([waiting])


async def test_messages_of_unassigned_or_closed_threads_are_left_alone(desk: Desk) -> None:
    await desk.visitor("nobody is online", "c-1")  # queued: shown with its backlog when someone takes it
    await stored_but_never_relayed(desk, "still nobody?")
    await sweep_of(desk).sweep(utcnow() + LAG + timedelta(seconds=1))
    await settle(desk.app)
    assert desk.chat(OLGA) == [] and desk.chat(SAM) == []


async def test_a_message_a_stopped_process_had_reserved_is_shown_by_the_sweep_once(desk: Desk) -> None:
    await desk.online(OLGA)
    await desk.visitor("hello", "c-1")
    lost = await stored_but_never_relayed(desk, "reserved, never shown", by=desk.app[LEASES].holder)
    thread_id = (await desk.store.messages.get(lost)).thread_id
    # Another process reserved showing it to Olga, then was SIGKILLed before the send.
    assert await desk.store.relay.reserve(OLGA, str(lost), thread_id, "a process SIGKILLed since", utcnow())
    sweep = sweep_of(desk)
    await sweep.sweep(utcnow() + LAG + timedelta(seconds=1))
    await settle(desk.app)
    assert sum("reserved, never shown" in t for t in desk.texts(OLGA)) == 1
    # Swept again, or relayed live by this process: not shown twice.
    await desk.store.leases.record_progress("relay-sweep", desk.app[LEASES].holder, None)
    await sweep.sweep(utcnow() + LAG + timedelta(seconds=1))
    message, thread = await desk.store.messages.get(lost), await desk.store.threads.get(thread_id)
    assert not await desk.app[OPERATOR_BOT].relay.show_once(OLGA, "en", thread, message)
    await settle(desk.app)
    assert sum("reserved, never shown" in t for t in desk.texts(OLGA)) == 1


async def test_a_message_the_forum_mirror_never_got_is_posted_into_its_topic_once(
    tg: TelegramEmulator, open_desk: OpenDesk
) -> None:
    desk = await open_forum(tg, open_desk, members=(OLGA,))
    await desk.online(OLGA)
    await desk.visitor("hello", "c-1")
    thread = await desk.store.threads.get((await desk.store.messages.collection.find_one())["thread_id"])
    assert thread is not None and thread.topic_id is not None

    def in_topic(text: str) -> int:
        return sum(text in (m.text or "") for m in desk.chat(SUPERVISORS) if m.message_thread_id == thread.topic_id)

    await stored_but_never_relayed(desk, "are you there?")
    relay = desk.app[OPERATOR_BOT].relay
    mirror = Mirror(desk.store, relay, desk.app[SETTINGS], desk.app[MIRROR_QUEUE])
    sweep = RelaySweep(desk.store, relay, desk.app[LEASES], LAG, mirror)
    later = utcnow() + LAG + timedelta(seconds=1)
    await sweep.sweep(later)
    await settle(desk.app)
    assert in_topic("are you there?") == 1 and sum("are you there?" in t for t in desk.texts(OLGA)) == 1

    await desk.store.leases.record_progress("relay-sweep", desk.app[LEASES].holder, None)  # sweep it all again
    await sweep.sweep(later)
    await settle(desk.app)
    assert in_topic("are you there?") == 1 and in_topic("hello") == 1  # nothing twice
