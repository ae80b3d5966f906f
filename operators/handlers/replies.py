"""Operator messages to customers: by Telegram reply, or to the one active conversation; otherwise ask."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage
from bson import ObjectId

from channels.telegram.filters import Magic
from gateway.config import Settings
from gateway.conversations import Conversations, Draft
from gateway.model import Author, Content, Message, Operator, Template, Thread, utcnow
from gateway.outbox import Outbox
from gateway.storage.mongo import Storage
from operators.answers import button_arg
from operators.drafts import draft_of
from operators.handlers import canned
from operators.lookup import active_thread, parse_index, parse_number, select_thread
from operators.texts import t

logger = logging.getLogger(__name__)

# The thread tag every bot message about a conversation starts with (or mentions first): "#17 · ...".
_TAG = re.compile(r"#([1-9][0-9]{0,17})\b")


def build_router() -> Router:
    """Catches every non-command message in the operator's private chat, so it must be included last."""
    router = Router(name="replies")
    router.message.register(reply_to_customer, Magic(F.chat.type == "private"), Magic(~F.text.startswith("/")))
    router.callback_query.register(pick, Magic(F.data.startswith("pick:")))
    router.callback_query.register(retry, Magic(F.data.startswith("retry:")))
    router.callback_query.register(send_template, Magic(F.data.startswith("tpl:")))
    return router


async def reply_to_customer(
    message: TgMessage, operator: Operator, lang: str, store: Storage, conversations: Conversations
) -> None:
    """Send what the operator wrote to the customer of the conversation it unambiguously belongs to."""
    thread, quoted = await _target(message, operator, lang, store)
    if thread is None:
        return
    draft = draft_of(message, operator, quoted)
    if draft is None:
        await message.reply(t(lang, "reply.unsupported"))
        return
    text, unknown = await canned.expand(draft.content.text, store)
    if unknown:
        await message.reply(t(lang, "canned.unknown", names=", ".join(f"!{name}" for name in unknown)))
        return
    draft = replace(draft, content=replace(draft.content, text=text))
    # Claimed before the send: the same Telegram message (a re-delivered or duplicated update) is never sent
    # twice, and a failure report can always find the operator's message.
    assert draft.id is not None
    if not await store.relay.claim(message.chat.id, message.message_id, thread.id, draft.id, utcnow()):
        return
    await conversations.send(thread, draft, read=True)


async def _target(
    message: TgMessage, operator: Operator, lang: str, store: Storage
) -> tuple[Thread | None, Message | None]:
    """The thread the message is for, and the customer message it answers; tells the operator when unclear."""
    quoted = None
    if message.reply_to_message is not None:
        entry = await store.relay.find(message.chat.id, message.reply_to_message.message_id)
        if entry is None:
            thread = await _tagged_thread(message, operator, store)
            if thread is None:
                await message.reply(t(lang, "reply.unknown"))
                return None, None
        else:
            thread = await store.threads.get(entry.thread_id)
            original = await store.messages.get(entry.gateway_message_id) if entry.gateway_message_id else None
            if original is not None and original.author is Author.CONTACT:
                quoted = original
    else:
        thread = await active_thread(operator, store)
        if thread is None:
            await _ask(message, operator, lang, store)
            return None, None
    if thread is None:
        await message.reply(t(lang, "reply.unknown"))
        return None, None
    if not thread.open:
        await message.reply(t(lang, "reply.closed", number=thread.number))
        return None, None
    if thread.operator_id != operator.id and not operator.is_supervisor:
        await message.reply(t(lang, "reply.not_yours", number=thread.number))
        return None, None
    return thread, quoted


async def _tagged_thread(message: TgMessage, operator: Operator, store: Storage) -> Thread | None:
    """The conversation a bot message names by its #N tag, when the bot has not stored yet which one it is
    about (the reply came before the bookkeeping) and only when it is this operator's: never a guess."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or message.bot is None or replied.from_user.id != message.bot.id:
        return None
    found = _TAG.search(replied.text or replied.caption or "")
    thread = await store.threads.by_number(int(found.group(1))) if found else None
    return thread if thread is not None and thread.open and thread.operator_id == operator.id else None


async def _ask(message: TgMessage, operator: Operator, lang: str, store: Storage) -> None:
    threads = [th for th in [await store.threads.get(i) for i in operator.chats] if th is not None and th.open]
    if not threads:
        await message.reply(t(lang, "reply.none"))
        return
    buttons = [[InlineKeyboardButton(text=f"#{th.number}", callback_data=f"pick:{th.number}")] for th in threads]
    await message.reply(
        t(lang, "reply.ambiguous", count=len(threads)), reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons)
    )


async def pick(query: CallbackQuery, operator: Operator, lang: str, store: Storage) -> None:
    """A thread chosen from the ambiguity prompt becomes the active one."""
    number = parse_number(button_arg(query.data))
    if number is None:
        await query.answer()
        return
    thread = await select_thread(operator, number, store)
    await query.answer(t(lang, "chat.selected", number=number) if thread else t(lang, "reply.not_yours", number=number))


async def retry(query: CallbackQuery, operator: Operator, lang: str, store: Storage, outbox: Outbox) -> None:
    """Send a failed message again."""
    raw = button_arg(query.data) or ""
    if not ObjectId.is_valid(raw):
        await query.answer()
        return
    message = await store.messages.get(ObjectId(raw))
    if message is None or message.author_id != operator.id or not await outbox.retry(message):
        await query.answer(t(lang, "delivery.not_retryable"))
        return
    await query.answer(t(lang, "delivery.retrying"))


async def send_template(
    query: CallbackQuery,
    operator: Operator,
    lang: str,
    store: Storage,
    conversations: Conversations,
    settings: Settings,
) -> None:
    """Send a configured WhatsApp template into a thread whose 24-hour window has closed."""
    number, index = parse_number(button_arg(query.data)), parse_index(button_arg(query.data, 2))
    templates = settings.whatsapp.templates if settings.whatsapp else ()
    thread = await store.threads.by_number(number) if number is not None else None
    if (
        thread is None
        or index is None
        or not index < len(templates)
        or (thread.operator_id != operator.id and not operator.is_supervisor)
    ):
        await query.answer()
        return
    template = templates[index]
    contact = await store.contacts.get(thread.contact_id)
    known = {"name": contact.display_name if contact else ""}
    variables = {str(i): known.get(name, "") for i, name in enumerate(template.variables, 1)}
    await conversations.send(
        thread,
        Draft(
            Content(
                text=f"[template {template.name}]",
                template=Template(content_sid=template.content_sid, variables=variables, name=template.name),
            ),
            author=Author.OPERATOR,
            author_id=operator.id,
            author_name=operator.name,
        ),
    )
    await query.answer(t(lang, "template.sent", name=template.name, number=thread.number))
