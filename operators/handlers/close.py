"""/close [N] and the card's Close button: the closing message, then the conversation closes."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from gateway.config import Settings
from gateway.conversations import Conversations, Draft
from gateway.csat import Survey
from gateway.model import Author, Contact, Content, Operator, Thread, ThreadStatus
from gateway.storage.mongo import Storage
from operators.answers import answer_query, button_arg
from operators.lookup import active_thread, find_thread, live_contact
from operators.texts import t


def build_router() -> Router:
    """/close and the card's Close button."""
    router = Router(name="close")
    router.message.register(close_chat, Command("close"))
    router.callback_query.register(close_button, Magic(F.data.startswith("close:")))
    return router


async def close_chat(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
    conversations: Conversations,
    settings: Settings,
    survey: Survey,
) -> None:
    """`/close [N]`: N defaults to the active conversation, or the only one."""
    if command.args:
        thread, error = await find_thread(store, operator, lang, command.args, command="close")
        if thread is None:
            await message.answer(error)
            return
    else:
        thread = await active_thread(operator, store)
        if thread is None:
            await _ask_which(message, operator, lang, store)
            return
    await message.answer(await close_thread(store, conversations, settings, lang, operator, thread, survey))


async def close_button(
    query: CallbackQuery,
    operator: Operator,
    lang: str,
    store: Storage,
    conversations: Conversations,
    settings: Settings,
    survey: Survey,
) -> None:
    """The card's Close button (and the buttons of the "which one?" question)."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="close")
    if thread is None:
        await answer_query(query, error)
        return
    await answer_query(query, await close_thread(store, conversations, settings, lang, operator, thread, survey))


async def close_thread(
    store: Storage,
    conversations: Conversations,
    settings: Settings,
    lang: str,
    operator: Operator,
    thread: Thread,
    survey: Survey,
) -> str:
    """Close, then send the configured closing message (never to a blocked customer) and the satisfaction survey;
    returns the confirmation.

    Closing first (a guarded update) means two presses at once say goodbye once: only the one that closed does.
    """
    closed = await conversations.close(thread, by=operator.id) if thread.open else None
    if closed is None:
        return t(lang, "close.already", number=thread.number)
    contact = await live_contact(store, closed)
    text = closing_message(settings, contact) if contact is not None and not contact.blocked else None
    if text:
        await conversations.send(closed, Draft(Content(text=text), author=Author.SYSTEM))
    await survey.ask(closed)
    return t(lang, "close.done_message" if text else "close.done", number=thread.number)


def closing_message(settings: Settings, contact: Contact) -> str | None:
    """The closing message in the customer's language (or the default language), if one is configured."""
    routing = settings.routing
    language = (contact.language or routing.default_language).split("-")[0].lower()
    return routing.closing_message.get(language) or routing.closing_message.get(routing.default_language)


async def _ask_which(message: TgMessage, operator: Operator, lang: str, store: Storage) -> None:
    threads = await store.threads.find(status=ThreadStatus.ASSIGNED, operator_id=operator.id, limit=50)
    if not threads:
        await message.answer(t(lang, "close.none"))
        return
    buttons = [InlineKeyboardButton(text=f"#{th.number}", callback_data=f"close:{th.number}") for th in threads]
    await message.answer(
        t(lang, "close.which", count=len(threads)),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)]),
    )
