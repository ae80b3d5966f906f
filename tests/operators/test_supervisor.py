"""Supervisor commands in the operator bot: /queue, /operators, /all, /assign, /operator; refusals."""

from __future__ import annotations

import re
import string
from datetime import timedelta

from channels.base import InboundMessage, Profile
from gateway.keys import CONVERSATIONS, INBOX
from gateway.model import (
    Content,
    Direction,
    IdentityRef,
    Kind,
    OperatorStatus,
    Role,
    Thread,
    ThreadStatus,
    utcnow,
)
from operators.cards import message_text
from operators.texts import supervisor
from tests.emulators.telegram import SECRET_HEADER
from tests.helpers import settle
from tests.operators.conftest import BOSS, EVE, OLGA, OPERATOR_BOT, SAM, Desk


async def customer(desk: Desk, name: str, text: str = "hello", n: int = 1) -> Thread:
    """A widget customer called `name` writes; returns their thread as it is after routing."""
    message = await desk.app[INBOX].on_inbound(
        InboundMessage(
            sender=IdentityRef("webwidget", "web", name.lower()),
            message_id=f"{name}:{n}",
            content=Content(Kind.TEXT, text),
            profile=Profile(display_name=name),
        )
    )
    await settle(desk.app)
    thread = await desk.store.threads.get(message.thread_id)
    assert thread is not None
    return thread


async def ask(desk: Desk, who: int, command: str) -> str:
    """What the bot answered last to a command."""
    await desk.say(who, command)
    return desk.texts(who)[-1]


async def test_supervisor_commands_refuse_operators_and_strangers(desk: Desk) -> None:
    await desk.online(SAM)
    thread = await customer(desk, "Ann")
    commands = [
        "/queue",
        "/operators",
        "/all",
        f"/assign {thread.number} @olga",
        "/stats today",
        "/operator add 6666 Eve",
        "/operator remove @sam",
        "/operator role @olga supervisor",
        "/operator capacity @olga 9",
    ]
    for command in commands:
        answer = await ask(desk, OLGA, command)
        assert answer == f"{command.split()[0]} is for supervisors only."
    assert await ask(desk, SAM, "/queue") == "/queue — команда только для супервизоров."
    # Nothing changed.
    assert (await desk.store.threads.get(thread.id)).operator_id == SAM
    olga = await desk.store.operators.get(OLGA)
    assert olga.role is Role.OPERATOR and olga.max_chats is None and olga.active
    assert await desk.store.operators.get(EVE) is None

    for command in commands:
        await desk.say(EVE, command)
    assert len(desk.chat(EVE)) == 1 and "only for the support team" in desk.texts(EVE)[0]


async def test_queue_lists_waiting_conversations_longest_wait_first(desk: Desk) -> None:
    assert await ask(desk, BOSS, "/queue") == "The queue is empty."
    ann = await customer(desk, "Ann")
    bob = await customer(desk, "Bob")
    now = utcnow()
    await desk.store.threads.update(ann.id, {"queued_at": now - timedelta(minutes=12)})
    await desk.store.threads.update(bob.id, {"queued_at": now - timedelta(hours=2, minutes=5)})

    lines = (await ask(desk, BOSS, "/queue")).split("\n")
    assert lines[0] == "Waiting conversations, longest wait first:"
    assert re.fullmatch(rf"#{bob.number} · Bob · Web chat · waiting 2h 05m", lines[1])
    assert re.fullmatch(rf"#{ann.number} · Ann · Web chat · waiting 12m \d\ds", lines[2])
    assert len(lines) == 3

    await desk.online(OLGA)  # takes both
    assert await ask(desk, BOSS, "/queue") == "The queue is empty."


async def test_operators_shows_status_since_load_capacity_and_groups(desk: Desk) -> None:
    await desk.store.operators.update(SAM, {"groups": ["billing", "vip"], "max_chats": 5})
    await desk.online(OLGA)
    await customer(desk, "Ann")
    since = (await desk.store.operators.get(OLGA)).status_since

    lines = (await ask(desk, BOSS, "/operators")).split("\n")
    assert lines == [
        "Operators:",
        "⚫ Boss (@boss) · supervisor · offline · 0/3",
        f"🟢 Olga (@olga) · online since {since:%H:%M} UTC · 1/3",
        "⚫ Sam (@sam) · offline · 0/5 · groups: billing, vip",
    ]


async def test_all_lists_every_open_conversation_with_its_operator(desk: Desk) -> None:
    assert await ask(desk, BOSS, "/all") == "There are no open conversations."
    await desk.store.operators.update(OLGA, {"max_chats": 1})
    await desk.online(OLGA)
    ann = await customer(desk, "Ann")
    bob = await customer(desk, "Bob")
    closed = await customer(desk, "Cid")
    await desk.app[CONVERSATIONS].close(closed)
    await settle(desk.app)

    assert (await ask(desk, BOSS, "/all")).split("\n") == [
        "Open conversations:",
        f"#{ann.number} · Ann · Web chat · Olga",
        f"#{bob.number} · Bob · Web chat · ⏳ queue",
    ]


async def test_assign_moves_the_conversation_and_later_messages_reach_only_the_new_operator(desk: Desk) -> None:
    await desk.online(OLGA)
    thread = await customer(desk, "Ann", "my parcel is late")
    assert thread.operator_id == OLGA
    await desk.online(SAM)
    olga_before, sam_before = len(desk.chat(OLGA)), len(desk.chat(SAM))

    answer = await ask(desk, BOSS, f"/assign #{thread.number} @sam")
    assert answer == f"#{thread.number} is now with Sam (before: Olga)."
    moved = await desk.store.threads.get(thread.id)
    assert moved.operator_id == SAM and moved.transfers[-1].by == BOSS
    assert (await desk.store.operators.get(OLGA)).chats == ()
    assert (await desk.store.operators.get(SAM)).chats == (thread.id,)
    assert desk.texts(OLGA)[olga_before:] == [f"↪️ Boss moved #{thread.number} to Sam."]
    sam_new = desk.texts(SAM)[sam_before:]
    assert sam_new[0].startswith(f"#{thread.number} · Ann · ")  # the card, then the conversation
    assert sam_new[-1] == f"#{thread.number} · my parcel is late"

    olga_before, sam_before = len(desk.chat(OLGA)), len(desk.chat(SAM))
    await customer(desk, "Ann", "any news?", n=2)
    assert desk.texts(SAM)[sam_before:] == [f"#{thread.number} · any news?"]
    assert len(desk.chat(OLGA)) == olga_before


async def test_assign_from_the_queue_by_name_or_id(desk: Desk) -> None:
    thread = await customer(desk, "Ann")
    assert thread.operator_id is None
    await desk.online(OLGA)  # takes Ann
    await desk.say(OLGA, "/offline")  # Ann back to the queue
    await desk.online(SAM)  # Sam takes Ann
    assert (await desk.store.threads.get(thread.id)).operator_id == SAM
    await desk.online(OLGA)
    n = thread.number
    assert await ask(desk, BOSS, f"/assign {n} olga") == f"#{n} is now with Olga (before: Sam)."
    assert await ask(desk, BOSS, f"/assign {n} {SAM}") == f"#{n} is now with Sam (before: Olga)."


async def test_assign_errors_change_nothing(desk: Desk) -> None:
    await desk.online(OLGA)
    thread = await customer(desk, "Ann")

    async def unchanged() -> None:
        now = await desk.store.threads.get(thread.id)
        assert now.operator_id == OLGA and now.status is ThreadStatus.ASSIGNED and now.transfers == ()
        assert (await desk.store.operators.get(OLGA)).chats == (thread.id,)
        assert (await desk.store.operators.get(SAM)).chats == ()

    usage = "Usage: /assign 17 @operator (an @username, a name or a Telegram id)."
    assert await ask(desk, BOSS, "/assign") == usage
    assert await ask(desk, BOSS, "/assign seventeen @sam") == usage
    assert await ask(desk, BOSS, f"/assign {thread.number}") == usage
    assert await ask(desk, BOSS, "/assign 999 @sam") == "There is no conversation #999."
    assert await ask(desk, BOSS, f"/assign {thread.number} @nobody") == "There is no operator @nobody. Nothing changed."
    assert await ask(desk, BOSS, f"/assign {thread.number} @olga") == f"#{thread.number} is already with Olga."
    offline = "Sam is offline: only online operators can take conversations. Nothing changed."
    assert await ask(desk, BOSS, f"/assign {thread.number} @sam") == offline
    await desk.say(SAM, "/away")
    away = "Sam is away: only online operators can take conversations. Nothing changed."
    assert await ask(desk, BOSS, f"/assign {thread.number} @sam") == away
    await unchanged()

    await desk.store.operators.update(SAM, {"max_chats": 1})
    await desk.online(SAM)
    await customer(desk, "Bob")  # Sam is the least busy: Bob fills him up
    sam = await desk.store.operators.get(SAM)
    assert len(sam.chats) == 1
    full = "Sam already has 1/1 conversations. Nothing changed."
    assert await ask(desk, BOSS, f"/assign {thread.number} @sam") == full
    assert (await desk.store.operators.get(SAM)).chats == sam.chats
    assert (await desk.store.threads.get(thread.id)).operator_id == OLGA

    await desk.app[CONVERSATIONS].close(await desk.store.threads.get(thread.id), by=OLGA)
    await settle(desk.app)
    assert await ask(desk, BOSS, f"/assign {thread.number} @olga") == f"#{thread.number} is closed. Nothing changed."


async def test_operator_add_lets_that_user_use_the_bot(desk: Desk) -> None:
    await desk.say(EVE, "/start")
    assert "only for the support team" in desk.texts(EVE)[-1]

    usage = (await ask(desk, BOSS, "/operator")).split("\n")
    assert usage[0] == "Usage:" and len(usage) == 5
    assert await ask(desk, BOSS, "/operator add Eve") == "\n".join(usage)
    assert await ask(desk, BOSS, "/operator add 6666") == "\n".join(usage)
    assert await ask(desk, BOSS, "/operator add 6666 @eve") == "\n".join(usage)
    assert await ask(desk, BOSS, "/operator add 6666 Eve @olga") == "@olga already belongs to Olga. Nothing changed."
    assert await ask(desk, BOSS, f"/operator add {OLGA} Olga") == "Olga is already an operator. Nothing changed."
    assert await desk.store.operators.get(EVE) is None

    added = await ask(desk, BOSS, "/operator add 6666 Eve Adams @Eve")
    assert added == "Eve Adams can use the bot now, as an operator. They start offline."
    eve = await desk.store.operators.get(EVE)
    assert eve.name == "Eve Adams" and eve.username == "eve" and eve.role is Role.OPERATOR
    await desk.say(EVE, "/online")
    assert (await desk.store.operators.get(EVE)).status is OperatorStatus.ONLINE
    assert "0/3" in desk.texts(EVE)[-1]
    thread = await customer(desk, "Ann")
    assert thread.operator_id == EVE
    assert await ask(desk, EVE, "/queue") == "/queue is for supervisors only."


async def test_operator_remove_returns_their_conversations_to_the_queue(desk: Desk) -> None:
    await desk.online(OLGA)
    threads = [await customer(desk, "Ann"), await customer(desk, "Bob")]
    assert {t.operator_id for t in threads} == {OLGA}

    assert await ask(desk, BOSS, "/operator remove @nobody") == "There is no operator @nobody. Nothing changed."
    assert await ask(desk, BOSS, "/operator remove ²") == "There is no operator ². Nothing changed."
    assert await ask(desk, BOSS, f"/operator remove {2**64}") == f"There is no operator {2**64}. Nothing changed."
    assert await ask(desk, BOSS, "/operator remove") == await ask(desk, BOSS, "/operator")
    assert await ask(desk, BOSS, "/operator remove @boss") == (
        "You can't remove yourself or change your own role. Nothing changed."
    )
    assert (await desk.store.operators.get(BOSS)).active

    answer = await ask(desk, BOSS, "/operator remove @olga")
    assert answer == "Olga was removed. Conversations handed back to the queue: 2."
    olga = await desk.store.operators.get(OLGA)
    assert not olga.active and olga.chats == () and olga.status is OperatorStatus.OFFLINE
    for thread in threads:
        now = await desk.store.threads.get(thread.id)
        assert now.status is ThreadStatus.QUEUED and now.operator_id is None
        notes = [
            message_text("en", now, m)
            for m in await desk.store.messages.for_thread(thread.id)
            if m.direction is Direction.INTERNAL
        ]
        assert notes == [f"#{now.number} · 📝 Olga was removed from the team; the conversation went back to the queue."]
    assert "Olga" not in await ask(desk, BOSS, "/operators")

    before = len(desk.chat(OLGA))
    await desk.say(OLGA, "/online")  # a stranger now: one polite refusal
    await desk.say(OLGA, "/chats")
    assert desk.texts(OLGA)[before:] == [
        "Sorry, this bot is only for the support team. If you need help, please contact us through our "
        "website or our customer bot."
    ]
    assert (await desk.store.operators.get(OLGA)).status is OperatorStatus.OFFLINE

    await desk.online(SAM)  # the queue drains to whoever is left
    assert {(await desk.store.threads.get(t.id)).operator_id for t in threads} == {SAM}


async def test_role_changes_take_effect_with_the_menu(desk: Desk) -> None:
    sam_scope = {"type": "chat", "chat_id": SAM}
    assert desk.tg.commands(OPERATOR_BOT, scope=sam_scope) == []
    assert await ask(desk, BOSS, "/operator role @sam boss") == await ask(desk, BOSS, "/operator")
    assert await ask(desk, BOSS, "/operator role @nobody supervisor") == (
        "There is no operator @nobody. Nothing changed."
    )
    assert await ask(desk, BOSS, "/operator role @sam operator") == "Sam's role is already operator."

    assert await ask(desk, BOSS, "/operator role @sam supervisor") == "Sam's role is supervisor now."
    assert (await desk.store.operators.get(SAM)).role is Role.SUPERVISOR
    assert await ask(desk, SAM, "/queue") == "Очередь пуста."
    assert "queue" in [c["command"] for c in desk.tg.commands(OPERATOR_BOT, scope=sam_scope)]

    assert await ask(desk, BOSS, "/operator role Sam operator") == "Sam's role is operator now."
    assert await ask(desk, SAM, "/queue") == "/queue — команда только для супервизоров."
    assert desk.tg.commands(OPERATOR_BOT, scope=sam_scope) == []
    assert desk.tg.commands(OPERATOR_BOT, scope=sam_scope, language_code="ru") == []

    assert await ask(desk, BOSS, f"/operator role {BOSS} operator") == (
        "You can't remove yourself or change your own role. Nothing changed."
    )
    assert (await desk.store.operators.get(BOSS)).role is Role.SUPERVISOR


async def test_capacity_changes_limit_assignment(desk: Desk) -> None:
    usage = await ask(desk, BOSS, "/operator")
    for bad in (
        "/operator capacity @olga",
        "/operator capacity @olga 0",
        "/operator capacity @olga two",
        "/operator capacity @olga 101",
        "/operator capacity @olga ²",
        "/operator add ² Sam",
    ):
        assert await ask(desk, BOSS, bad) == usage
    assert await ask(desk, BOSS, "/operator capacity @nobody 2") == "There is no operator @nobody. Nothing changed."
    assert (await desk.store.operators.get(OLGA)).max_chats is None

    answer = await ask(desk, BOSS, "/operator capacity @olga 1")
    assert answer == "Olga can now have up to 1 conversations at once (open now: 0)."
    await desk.online(OLGA)
    ann, bob = await customer(desk, "Ann"), await customer(desk, "Bob")
    assert ann.operator_id == OLGA and bob.operator_id is None
    full = "Olga already has 1/1 conversations. Nothing changed."
    assert await ask(desk, BOSS, f"/assign {bob.number} @olga") == full

    answer = await ask(desk, BOSS, "/operator capacity olga 2")
    assert answer == "Olga can now have up to 2 conversations at once (open now: 1)."
    await settle(desk.app)
    assert (await desk.store.threads.get(bob.id)).operator_id == OLGA  # the queue moved at once
    assert "2/2" in await ask(desk, BOSS, "/operators")


def test_supervisor_texts_exist_in_both_languages_with_the_same_placeholders() -> None:
    en, ru = supervisor.TEXTS["en"], supervisor.TEXTS["ru"]
    assert en.keys() == ru.keys()
    for key in en:
        fields = lambda text: sorted(f for _, f, _, _ in string.Formatter().parse(text) if f)  # noqa: E731
        assert fields(en[key]) == fields(ru[key]), key


async def test_an_operator_who_blocked_the_bot_goes_offline_and_their_chats_go_to_others(desk: Desk) -> None:
    await desk.online(OLGA, BOSS)
    ann = await desk.visitor("first question", "a-1")
    thread = await desk.store.threads.find(operator_id=OLGA)
    assert len(thread) == 1
    desk.tg.block(OLGA, OPERATOR_BOT)
    await desk.online(SAM)
    await ann.say("are you there?", "a-2")  # shown to Olga: Telegram answers 403
    await settle(desk.app)
    olga = await desk.store.operators.get(OLGA)
    assert olga.status is OperatorStatus.OFFLINE and olga.chats == ()
    # Her conversations went to someone who can see them, and the supervisors know why.
    assert (await desk.store.threads.get(thread[0].id)).operator_id in (SAM, BOSS)
    assert any("cannot reach Olga" in text and "blocked the bot" in text for text in desk.texts(BOSS))


async def test_deadletters_shows_what_could_not_be_understood_to_supervisors_only(desk: Desk) -> None:
    await desk.say(BOSS, "/deadletters")
    assert desk.texts(BOSS)[-1].startswith("No dead letters")
    response = await desk.client.post("/operators/telegram", data=b"[[[", headers={SECRET_HEADER: "desk-secret"})
    assert response.status == 200
    await desk.say(BOSS, "/deadletters")
    listing = desk.texts(BOSS)[-1]
    assert (
        listing.startswith("Dead letters, newest first (1 in all") and "operator_bot · not a Telegram Update" in listing
    )
    await desk.say(OLGA, "/deadletters")
    assert desk.texts(OLGA)[-1] == "/deadletters is for supervisors only."
