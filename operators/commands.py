"""Supervisor commands: the queue, operators and their load, every open conversation, reassignment, KPIs,
and managing operators without editing the config."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import BotCommandScopeChat
from aiogram.types import Message as TgMessage

from channels.telegram.limits import join_lines
from gateway.config import Settings
from gateway.model import Operator, OperatorStatus, Role, Thread, utcnow
from gateway.storage.mongo import Storage
from operators.access import SupervisorOnly
from operators.answers import short
from operators.cards import channel_label
from operators.csat import satisfaction
from operators.handlers.help import set_menu
from operators.lookup import find_operator, parse_index, parse_number
from operators.presence import Presence
from operators.routing import Routing
from operators.stats import compute, format_duration, parse_period, render
from operators.texts import LANGUAGES, t

logger = logging.getLogger(__name__)

COMMANDS = ("queue", "operators", "all", "assign", "stats", "operator", "deadletters")
DEAD_LETTERS_SHOWN = 10
LIST_LIMIT = 200  # conversations listed by /queue and /all
MAX_CAPACITY = 100
STATUS_ICONS = {OperatorStatus.ONLINE: "🟢", OperatorStatus.AWAY: "🟡", OperatorStatus.OFFLINE: "⚫"}


class Subcommand(Filter):
    """Matches `/operator <name> ...` and hands the words after the name on as `words`."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, message: TgMessage, command: CommandObject) -> bool | dict[str, Any]:
        words = (command.args or "").split()
        if not words or words[0].lower() != self.name:
            return False
        return {"words": words[1:]}


def build_router() -> Router:
    """Every command needs a supervisor; anyone else who tries one is told so."""
    router = Router(name="supervisor")
    router.message.register(show_queue, Command("queue"), SupervisorOnly())
    router.message.register(show_operators, Command("operators"), SupervisorOnly())
    router.message.register(show_all, Command("all"), SupervisorOnly())
    router.message.register(assign, Command("assign"), SupervisorOnly())
    router.message.register(show_stats, Command("stats"), SupervisorOnly())
    router.message.register(show_dead_letters, Command("deadletters"), SupervisorOnly())
    for name, handler in (
        ("add", add_operator),
        ("remove", remove_operator),
        ("role", set_role),
        ("capacity", set_capacity),
    ):
        router.message.register(handler, Command("operator"), SupervisorOnly(), Subcommand(name))
    router.message.register(operator_usage, Command("operator"), SupervisorOnly())
    router.message.register(refuse, Command(*COMMANDS))
    return router


async def refuse(message: TgMessage, lang: str) -> None:
    """A supervisor command from someone who is not a supervisor."""
    command = (message.text or "").split()[0].split("@")[0]
    await message.answer(t(lang, "sup.refused", command=command))


# -- looking -----------------------------------------------------------------------------------


async def show_queue(message: TgMessage, lang: str, store: Storage) -> None:
    """/queue: waiting conversations, longest wait first."""
    threads = await store.threads.queued(limit=LIST_LIMIT)
    if not threads:
        await message.answer(t(lang, "sup.queue.empty"))
        return
    now = utcnow()
    lines = [t(lang, "sup.queue.title")]
    for thread in threads:
        name, channel = await _who(store, lang, thread)
        wait = format_duration((now - (thread.queued_at or thread.created_at)).total_seconds())
        lines.append(t(lang, "sup.queue.line", number=thread.number, name=name, channel=channel, wait=wait))
    await _answer(message, lang, lines, len(threads))


async def show_operators(message: TgMessage, lang: str, store: Storage, settings: Settings) -> None:
    """/operators: each operator's status, since when, load/capacity and groups."""
    operators = await store.operators.all()
    if not operators:
        await message.answer(t(lang, "sup.operators.empty"))
        return
    now, default = utcnow(), settings.routing.max_chats_per_operator
    lines = [t(lang, "sup.operators.title")] + [_operator_line(lang, o, default, now) for o in operators]
    await _answer(message, lang, lines, 0)


async def show_all(message: TgMessage, lang: str, store: Storage) -> None:
    """/all: every open conversation with its operator, or the queue."""
    threads = await store.threads.open_threads(limit=LIST_LIMIT)
    if not threads:
        await message.answer(t(lang, "sup.all.empty"))
        return
    names = {o.id: o.name for o in await store.operators.all(active_only=False)}
    lines = [t(lang, "sup.all.title")]
    for thread in threads:
        name, channel = await _who(store, lang, thread)
        owner = (
            t(lang, "sup.all.queue")
            if thread.operator_id is None
            else names.get(thread.operator_id, str(thread.operator_id))
        )
        lines.append(t(lang, "sup.all.line", number=thread.number, name=name, channel=channel, owner=owner))
    await _answer(message, lang, lines, len(threads))


async def show_stats(
    message: TgMessage, command: CommandObject, lang: str, store: Storage, presence: Presence, settings: Settings
) -> None:
    """/stats [today|7d|YYYY-MM-DD]: the KPIs of a period."""
    period = parse_period(command.args, utcnow())
    if period is None:
        await message.answer(t(lang, "stats.usage"))
        return
    report = await compute(store, presence, period)
    lines = render(lang, report).split("\n")
    if ratings := await satisfaction(store, lang, period.start, period.end, enabled=settings.csat.enabled):
        lines += ["", *ratings]
    for text in join_lines(lines):
        await message.answer(text)


async def show_dead_letters(message: TgMessage, lang: str, store: Storage) -> None:
    """/deadletters: what came in but could not be understood, newest first, with the reason."""
    letters = await store.dead_letters.latest(DEAD_LETTERS_SHOWN)
    if not letters:
        await message.answer(t(lang, "sup.dead.empty"))
        return
    lines = [t(lang, "sup.dead.title", count=await store.dead_letters.count())]
    lines += [
        t(
            lang,
            "sup.dead.line",
            at=f"{d.at:%Y-%m-%d %H:%M}",
            source=d.source,
            reason=short(d.reason, 200),
            payload=short(" ".join(d.payload.split()), 200),
        )
        for d in letters
    ]
    for text in join_lines(lines):
        await message.answer(text)


# -- reassigning -------------------------------------------------------------------------------


async def assign(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
    routing: Routing,
    settings: Settings,
) -> None:
    """/assign N @operator: move a conversation to an online operator with room."""
    words = (command.args or "").split(maxsplit=1)
    number = parse_number(words[0]) if len(words) == 2 else None
    if number is None:
        await message.answer(t(lang, "sup.assign.usage"))
        return
    thread = await store.threads.by_number(number)
    if thread is None:
        await message.answer(t(lang, "sup.assign.unknown_thread", number=number))
        return
    if not thread.open:
        await message.answer(t(lang, "sup.assign.closed", number=number))
        return
    target = await _active_operator(store, words[1])
    if target is None:
        await message.answer(t(lang, "sup.assign.unknown_operator", ref=words[1]))
        return
    previous = await store.operators.get(thread.operator_id) if thread.operator_id is not None else None
    outcome = await routing.transfer(thread, to_operator=target, by=operator.id, reason="assign")
    if outcome.error is not None:
        await message.answer(await _assign_error(lang, outcome.error, thread, target, store, settings))
        return
    before = previous.name if previous else t(lang, "sup.all.queue")
    await message.answer(t(lang, "sup.assign.done", number=number, name=target.name, previous=before))


async def _assign_error(
    lang: str, error: str, thread: Thread, target: Operator, store: Storage, settings: Settings
) -> str:
    if error == "closed":
        return t(lang, "sup.assign.closed", number=thread.number)
    if error == "same_operator":
        return t(lang, "sup.assign.same", number=thread.number, name=target.name)
    if error == "not_available":
        now = await store.operators.get(target.id) or target
        if now.status is not OperatorStatus.ONLINE:
            return t(lang, "sup.assign.offline", name=now.name, status=t(lang, f"status.{now.status.value}"))
        return t(
            lang,
            "sup.assign.full",
            name=now.name,
            load=len(now.chats),
            capacity=now.capacity(settings.routing.max_chats_per_operator),
        )
    return t(lang, "sup.assign.changed", number=thread.number)


# -- managing operators ------------------------------------------------------------------------


async def operator_usage(message: TgMessage, lang: str) -> None:
    await message.answer(t(lang, "sup.operator.usage"))


async def add_operator(message: TgMessage, words: list[str], lang: str, store: Storage, bot: Bot) -> None:
    """/operator add <telegram id> <name> [@username]: a new operator (or a removed one back), role operator."""
    username = words[-1].lstrip("@") if len(words) > 2 and words[-1].startswith("@") else None
    name = " ".join(words[1:-1] if username else words[1:])
    user_id = parse_index(words[0], low=1) if words else None
    if len(words) < 2 or user_id is None or not name or name.startswith("@"):
        await message.answer(t(lang, "sup.operator.usage"))
        return
    existing = await store.operators.get(user_id)
    if existing is not None and existing.active:
        await message.answer(t(lang, "sup.operator.exists", name=existing.name))
        return
    holder = await store.operators.by_username(username) if username else None
    if holder is not None and holder.id != user_id:
        await message.answer(t(lang, "sup.operator.username_taken", username=username, name=holder.name))
        return
    added = await store.operators.upsert(user_id, name=name, username=username, role=Role.OPERATOR.value)
    await _refresh_menu(bot, store)
    await message.answer(t(lang, "sup.operator.added", name=added.name))


async def remove_operator(
    message: TgMessage,
    words: list[str],
    operator: Operator,
    lang: str,
    store: Storage,
    routing: Routing,
    presence: Presence,
    bot: Bot,
) -> None:
    """/operator remove <operator>: no more access; their open conversations go back to the queue."""
    target = await _subject(message, words, operator, lang, store)
    if target is None:
        return
    removed = await store.operators.update(target.id, {"active": False}) or target
    await routing.release(removed, "removed")
    # Offline, so a removed operator stops accruing online time in the KPIs.
    await presence.set_status(target.id, OperatorStatus.OFFLINE)
    await _refresh_menu(bot, store, dropped=target.id if target.is_supervisor else None)
    await message.answer(t(lang, "sup.operator.removed", name=target.name, count=len(removed.chats)))


async def set_role(
    message: TgMessage, words: list[str], operator: Operator, lang: str, store: Storage, bot: Bot
) -> None:
    """/operator role <operator> operator|supervisor."""
    if len(words) < 2 or words[-1].lower() not in {r.value for r in Role}:
        await message.answer(t(lang, "sup.operator.usage"))
        return
    role = Role(words[-1].lower())
    target = await _subject(message, words[:-1], operator, lang, store)
    if target is None:
        return
    role_name = t(lang, f"sup.role.{role.value}")
    if target.role is role:
        await message.answer(t(lang, "sup.operator.same_role", name=target.name, role=role_name))
        return
    await store.operators.update(target.id, {"role": role.value})
    await _refresh_menu(bot, store, dropped=target.id if role is Role.OPERATOR else None)
    await message.answer(t(lang, "sup.operator.role_set", name=target.name, role=role_name))


async def set_capacity(
    message: TgMessage, words: list[str], operator: Operator, lang: str, store: Storage, routing: Routing
) -> None:
    """/operator capacity <operator> <n>: how many conversations they may have at once."""
    capacity = parse_index(words[-1], low=1) if words else None
    if len(words) < 2 or capacity is None or capacity > MAX_CAPACITY:
        await message.answer(t(lang, "sup.operator.usage"))
        return
    target = await _active_operator(store, " ".join(words[:-1]))
    if target is None:
        await message.answer(t(lang, "sup.operator.unknown", ref=" ".join(words[:-1])))
        return
    updated = await store.operators.update(target.id, {"max_chats": capacity}) or target
    await routing.drain()  # more room lets waiting conversations in
    await message.answer(
        t(lang, "sup.operator.capacity_set", name=updated.name, capacity=int(words[-1]), load=len(updated.chats))
    )


async def _subject(
    message: TgMessage, words: list[str], operator: Operator, lang: str, store: Storage
) -> Operator | None:
    """The operator a removal or role change is about; None (after saying why) when there is none."""
    ref = " ".join(words)
    if not ref:
        await message.answer(t(lang, "sup.operator.usage"))
        return None
    target = await _active_operator(store, ref)
    if target is None:
        await message.answer(t(lang, "sup.operator.unknown", ref=ref))
        return None
    if target.id == operator.id:
        # Otherwise the last supervisor could lock everyone out of these commands.
        await message.answer(t(lang, "sup.operator.self"))
        return None
    return target


async def _active_operator(store: Storage, ref: str) -> Operator | None:
    operator = await find_operator(store, ref) if ref.strip() else None
    return operator if operator is not None and operator.active else None


async def _refresh_menu(bot: Bot, store: Storage, *, dropped: int | None = None) -> None:
    """Publish the command menu again; `dropped` is a former supervisor who loses the supervisor commands."""
    try:
        if dropped is not None:
            for lang in LANGUAGES:
                await bot.delete_my_commands(
                    scope=BotCommandScopeChat(chat_id=dropped), language_code=None if lang == "en" else lang
                )
        await set_menu(bot, await store.operators.all())
    except TelegramAPIError:
        # The change itself is stored; the menu catches up at the next start.
        logger.warning("could not update the operator bot's command menu", exc_info=True)


# -- formatting --------------------------------------------------------------------------------


async def _who(store: Storage, lang: str, thread: Thread) -> tuple[str, str]:
    """The customer's name and channel, as on the card."""
    contact = await store.contacts.get(thread.contact_id)
    if contact is None:
        return "?", thread.channel
    return contact.display_name, channel_label(lang, contact, thread)


def _operator_line(lang: str, operator: Operator, default_capacity: int, now: datetime) -> str:
    name = operator.name + (f" (@{operator.username})" if operator.username else "")
    if operator.is_supervisor:
        name += f" · {t(lang, 'sup.operators.supervisor')}"
    since = ""
    if operator.status_since is not None:
        at = operator.status_since
        moment = f"{at:%H:%M}" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M}"
        since = t(lang, "sup.operators.since", time=moment)
    groups = t(lang, "sup.operators.groups", groups=", ".join(operator.groups)) if operator.groups else ""
    return t(
        lang,
        "sup.operators.line",
        icon=STATUS_ICONS[operator.status],
        name=name,
        status=t(lang, f"status.{operator.status.value}"),
        since=since,
        load=len(operator.chats),
        capacity=operator.capacity(default_capacity),
        groups=groups,
    )


async def _answer(message: TgMessage, lang: str, lines: list[str], shown: int) -> None:
    """Lines in as few messages as Telegram allows, saying when a list was cut short."""
    if shown >= LIST_LIMIT:
        lines = [*lines, t(lang, "sup.more", count=LIST_LIMIT)]
    for text in join_lines(lines):
        await message.answer(text)
