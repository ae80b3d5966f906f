"""/chats, /chat N and /next: the operator's conversations and the one plain messages go to."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.limits import join_lines
from gateway.config import Settings
from gateway.model import Operator, OperatorStatus, ThreadStatus, utcnow
from gateway.storage.mongo import Storage
from operators.answers import duration
from operators.cards import channel_name
from operators.lookup import active_thread, find_thread, select_thread
from operators.routing import Routing
from operators.texts import t


def build_router() -> Router:
    """/chats, /chat, /next."""
    router = Router(name="chats")
    router.message.register(list_chats, Command("chats"))
    router.message.register(choose_chat, Command("chat"))
    router.message.register(take_next, Command("next"))
    return router


async def list_chats(message: TgMessage, operator: Operator, lang: str, store: Storage) -> None:
    """The operator's open conversations with unread counts and idle time; the active one marked."""
    threads = await store.threads.find(status=ThreadStatus.ASSIGNED, operator_id=operator.id, limit=50)
    if not threads:
        await message.answer(t(lang, "chats.empty"))
        return
    active = await active_thread(operator, store)
    now = utcnow()
    lines = [t(lang, "chats.title", count=len(threads))]
    for thread in threads:
        contact = await store.contacts.get(thread.contact_id)
        marker = t(lang, "chats.active") if active is not None and active.id == thread.id else ""
        if thread.visitor_left_at is not None:
            marker += t(lang, "chats.left")
        lines.append(
            t(
                lang,
                "chats.line",
                number=thread.number,
                name=contact.display_name if contact else "?",
                channel=channel_name(lang, thread.channel),
                active=marker,
            )
        )
        lines.append(
            t(
                lang,
                "chats.stats",
                unread=thread.unread,
                idle=duration(lang, (now - thread.last_message_at).total_seconds()),
            )
        )
    lines.append(t(lang, "chats.hint"))
    buttons = [InlineKeyboardButton(text=f"#{th.number}", callback_data=f"pick:{th.number}") for th in threads]
    keyboard = InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)])
    parts = join_lines(lines)
    for part in parts[:-1]:
        await message.answer(part)
    await message.answer(parts[-1], reply_markup=keyboard)


async def choose_chat(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage
) -> None:
    """Make a conversation the active one: plain messages go there."""
    thread, error = await find_thread(store, operator, lang, command.args, command="chat", open_only=True)
    if thread is None:
        await message.answer(error)
        return
    if await select_thread(operator, thread.number, store) is None:  # closed or moved meanwhile
        await message.answer(t(lang, "thread.closed", number=thread.number))
        return
    await message.answer(t(lang, "chat.selected", number=thread.number))


async def take_next(
    message: TgMessage, operator: Operator, lang: str, store: Storage, routing: Routing, settings: Settings
) -> None:
    """Take the longest-waiting conversation from the queue and make it active."""
    if operator.status is not OperatorStatus.ONLINE:
        await message.answer(t(lang, "next.not_online", status=t(lang, f"status.{operator.status.value}")))
        return
    outcome = await routing.take_next(operator)
    if outcome.thread is None:
        if outcome.error == "queue_empty":
            await message.answer(t(lang, "next.empty"))
            return
        current = await store.operators.get(operator.id) or operator
        if current.status is not OperatorStatus.ONLINE:
            await message.answer(t(lang, "next.not_online", status=t(lang, f"status.{current.status.value}")))
        else:
            await message.answer(
                t(
                    lang,
                    "next.full",
                    load=len(current.chats),
                    capacity=current.capacity(settings.routing.max_chats_per_operator),
                )
            )
        return
    await store.operators.update(operator.id, {"active_thread_id": outcome.thread.id})
    await message.answer(t(lang, "next.taken", number=outcome.thread.number))
