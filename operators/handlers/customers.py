"""/note, /block and /unblock (and the card's Block button), /search over customers and messages."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from channels.telegram.limits import join_lines
from gateway.config import Settings
from gateway.contacts import normalize_phone
from gateway.conversations import Conversations
from gateway.model import Contact, Note, Operator, Thread, utcnow
from gateway.storage.mongo import Storage
from operators.answers import answer_query, button_arg, short
from operators.cards import message_text, pretty_phone
from operators.lookup import active_thread, find_thread, live_contact, may_see, parse_number
from operators.texts import t

NOTE_LIMIT = 2000
SEARCH_MIN, SEARCH_MAX = 2, 100
RESULTS = 10


def build_router() -> Router:
    """Notes, blocking and search; the card's Block button and the Unblock button."""
    router = Router(name="customers")
    router.message.register(add_note, Command("note"))
    router.message.register(block, Command("block"))
    router.message.register(unblock, Command("unblock"))
    router.message.register(search, Command("search"))
    router.callback_query.register(block_button, Magic(F.data.startswith("block:")))
    router.callback_query.register(unblock_button, Magic(F.data.startswith("unblock:")))
    return router


# -- notes ----------------------------------------------------------------------------------------


async def add_note(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage) -> None:
    """`/note text` on the active conversation's customer, or `/note N text`."""
    parts = (command.args or "").strip().split(maxsplit=1)
    if not parts or (len(parts) == 1 and parse_number(parts[0]) is not None):
        await message.answer(t(lang, "note.usage"))
        return
    if len(parts) == 2 and parse_number(parts[0]) is not None:
        thread, error = await find_thread(store, operator, lang, parts[0], command="note", allowed=may_see)
        if thread is None:
            await message.answer(error)
            return
        text = parts[1].strip()
    else:
        thread = await active_thread(operator, store)
        if thread is None:
            await message.answer(t(lang, "note.no_active"))
            return
        text = " ".join(parts)
    if len(text) > NOTE_LIMIT:
        await message.answer(t(lang, "note.too_long", limit=NOTE_LIMIT))
        return
    contact = await live_contact(store, thread)
    if contact is None:
        await message.answer(t(lang, "thread.unknown", number=thread.number))
        return
    await store.contacts.add_note(
        contact.id, Note(author_id=operator.id, author_name=operator.name, text=text, created_at=utcnow())
    )
    await message.answer(t(lang, "note.saved", name=contact.display_name, number=thread.number))


# -- blocking -------------------------------------------------------------------------------------


async def block(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
    conversations: Conversations,
) -> None:
    """Block the customer of a conversation: their messages are kept but never routed."""
    thread, error = await find_thread(store, operator, lang, command.args, command="block")
    if thread is None:
        await message.answer(error)
        return
    text, keyboard = await block_customer(store, conversations, lang, operator, thread)
    await message.answer(text, reply_markup=keyboard)


async def block_button(
    query: CallbackQuery, operator: Operator, lang: str, store: Storage, conversations: Conversations
) -> None:
    """The card's Block button."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="block")
    if thread is None:
        await answer_query(query, error)
        return
    text, keyboard = await block_customer(store, conversations, lang, operator, thread)
    await answer_query(query, text, markup=keyboard)


async def block_customer(
    store: Storage, conversations: Conversations, lang: str, operator: Operator, thread: Thread
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Mark the card blocked and close its open conversation, without a closing message."""
    contact = await live_contact(store, thread)
    if contact is None:
        return t(lang, "thread.unknown", number=thread.number), None
    if not contact.blocked:
        await store.contacts.set_blocked(contact.id, True, utcnow())
    if thread.open:
        await conversations.close(thread, by=operator.id)
    # N may be an earlier conversation: the one the customer has open now closes too.
    current = await store.threads.open_for(contact.id)
    if current is not None:
        await conversations.close(current, by=operator.id)
    key = "block.already" if contact.blocked else "block.done"
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t(lang, "block.unblock_button"), callback_data=f"unblock:{thread.number}")]
        ]
    )
    return t(lang, key, name=contact.display_name, number=thread.number), keyboard


async def unblock(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage) -> None:
    """Unblock a customer: their next message opens a conversation that is routed as usual."""
    thread, error = await find_thread(store, operator, lang, command.args, command="unblock")
    await message.answer(await unblock_customer(store, lang, thread) if thread is not None else error)


async def unblock_button(query: CallbackQuery, operator: Operator, lang: str, store: Storage) -> None:
    """The Unblock button under a block confirmation."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="unblock")
    await answer_query(query, await unblock_customer(store, lang, thread) if thread is not None else error)


async def unblock_customer(store: Storage, lang: str, thread: Thread) -> str:
    """Clear the blocked flag; returns the confirmation."""
    contact = await live_contact(store, thread)
    if contact is None:
        return t(lang, "thread.unknown", number=thread.number)
    if not contact.blocked:
        return t(lang, "unblock.not_blocked", name=contact.display_name, number=thread.number)
    await store.contacts.set_blocked(contact.id, False, utcnow())
    return t(lang, "unblock.done", name=contact.display_name, number=thread.number)


# -- search ---------------------------------------------------------------------------------------


async def search(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage, settings: Settings
) -> None:
    """Customers and messages matching the text, among those the operator may see."""
    query = (command.args or "").strip()[:SEARCH_MAX]
    if len(query) < SEARCH_MIN:
        await message.answer(t(lang, "search.usage", limit=SEARCH_MIN))
        return
    phone = normalize_phone(query, settings.contacts.default_region) if any(c.isdigit() for c in query) else None
    if operator.is_supervisor:
        contacts = await store.contacts.search(query, phone=phone, limit=RESULTS)
        found = await store.messages.search(query, limit=RESULTS)
        latest = {c.id: await store.threads.latest_for(c.id) for c in contacts}
    else:
        # Operators see the customers of conversations that are or were theirs.
        handled = await store.threads.handled_by(operator.id)
        contacts = await store.contacts.search(
            query, phone=phone, among=list({th.contact_id for th in handled}), limit=RESULTS
        )
        found = await store.messages.search(query, threads=[th.id for th in handled], limit=RESULTS)
        latest = {}
        for th in handled:  # most recently active first
            latest.setdefault(th.contact_id, th)
    if not contacts and not found:
        await message.answer(t(lang, "search.nothing", query=query))
        return
    lines = [t(lang, "search.title", query=query)]
    if contacts:
        lines.append(t(lang, "search.contacts"))
        lines += [_contact_line(lang, c, latest.get(c.id)) for c in contacts]
    if found:
        threads = await store.threads.many(list({m.thread_id for m in found}))
        lines.append(t(lang, "search.messages"))
        lines += [
            t(
                lang,
                "search.message",
                date=f"{m.created_at:%d.%m.%Y}",
                line=short(message_text(lang, threads[m.thread_id], m), 200),
            )
            for m in found
            if m.thread_id in threads
        ]
    for part in join_lines(lines):
        await message.answer(part)


def _contact_line(lang: str, contact: Contact, thread: Thread | None) -> str:
    details = [pretty_phone(p) for p in contact.phones[:1]] + list(contact.emails[:1])
    return t(
        lang,
        "search.contact",
        name=contact.display_name,
        details="".join(f" · {d}" for d in details),
        threads=f"#{thread.number}" if thread else t(lang, "search.no_thread"),
    )
