"""/history N [filter] [page] and the card's History button: a customer's messages across conversations."""

from __future__ import annotations

import math

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from channels.telegram.limits import join_lines
from gateway.model import Operator, Thread
from gateway.storage.mongo import Storage
from operators.answers import answer_query, button_arg
from operators.cards import message_text
from operators.history_filters import FILTERS, page_buttons, pages_view
from operators.lookup import find_thread, live_contact, may_see, parse_number
from operators.texts import t

PAGE = 10  # history messages per page


def build_router() -> Router:
    """/history and its buttons."""
    router = Router(name="history")
    router.message.register(show_history, Command("history"))
    router.callback_query.register(history_button, Magic(F.data.startswith("history:")))
    router.callback_query.register(history_page, Magic(F.data.startswith("hist:")))
    return router


async def show_history(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage
) -> None:
    """`/history N [customer|operator|notes|actions|pages|media] [page]`: the customer's messages across all their
    conversations, newest page first, only of one type when a filter is named."""
    args = (command.args or "").split()
    thread, error = await find_thread(
        store, operator, lang, args[0] if args else None, command="history", allowed=may_see
    )
    if thread is None:
        await message.answer(error)
        return
    only = args[1].lower() if len(args) > 1 and args[1].lower() in FILTERS else None
    rest = args[2:] if only else args[1:]
    page = parse_number(rest[0]) if rest else 1
    if len(args) > 1 and only is None and page is None:
        await message.answer(t(lang, "history.filters", filters=" | ".join(FILTERS)))
        return
    if only == "pages":
        texts, keyboard = await pages_view(store, lang, thread, page or 1)
    else:
        texts, keyboard = await history_view(store, lang, thread, page or 1, only)
    for i, text in enumerate(texts):
        await message.answer(text, reply_markup=keyboard if i == len(texts) - 1 else None)


async def history_button(query: CallbackQuery, operator: Operator, lang: str, store: Storage) -> None:
    """The card's History button: the newest page."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="history", allowed=may_see)
    if thread is None:
        await answer_query(query, error)
        return
    texts, keyboard = await history_view(store, lang, thread, 1)
    await answer_query(query, *texts, markup=keyboard)


async def history_page(query: CallbackQuery, operator: Operator, lang: str, store: Storage) -> None:
    """Older/Newer under a history page (`hist:N:page`): the page is replaced in place."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="history", allowed=may_see)
    page = parse_number(button_arg(query.data, 2))
    only = button_arg(query.data, 3) or None
    if thread is None or page is None or (only is not None and only not in FILTERS):
        await answer_query(query, error or t(lang, "thread.usage", command="history"))
        return
    if only == "pages":
        texts, keyboard = await pages_view(store, lang, thread, page)
    else:
        texts, keyboard = await history_view(store, lang, thread, page, only)
    if isinstance(query.message, TgMessage) and len(texts) == 1:
        await query.answer()
        await query.message.edit_text(texts[0], reply_markup=keyboard)
    else:  # a page too long for one message comes as new messages
        await answer_query(query, *texts, markup=keyboard)


async def history_view(
    store: Storage, lang: str, thread: Thread, page: int, only: str | None = None
) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """One page of a customer's history (oldest first within the page), every message whole, in as many texts
    as it takes; and its Older/Newer buttons."""
    contact = await live_contact(store, thread)
    contact_id = contact.id if contact else thread.contact_id
    name = contact.display_name if contact else "?"
    total = await store.messages.count_for_contact(contact_id, only)
    if total == 0:
        return [t(lang, "history.empty_of" if only else "history.empty", name=name, only=only)], None
    pages = math.ceil(total / PAGE)
    page = min(page, pages)
    messages = await store.messages.page_for_contact(contact_id, skip=(page - 1) * PAGE, limit=PAGE, only=only)
    threads = await store.threads.many(list({m.thread_id for m in messages}))
    lines = [t(lang, "history.title", name=name, page=page, pages=pages)]
    if only:
        lines[0] += " " + t(lang, "history.only", only=only)
    lines.extend(
        f"{m.created_at:%d.%m %H:%M} {message_text(lang, threads[m.thread_id], m)}"
        for m in reversed(messages)
        if m.thread_id in threads
    )
    return join_lines(lines), page_buttons(lang, thread, page, pages, only)
