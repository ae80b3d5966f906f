"""/tr N text: a reply translated into the customer's language; the original is kept as a note."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message as TgMessage
from bson import ObjectId

from gateway.config import Settings
from gateway.conversations import Conversations, Draft
from gateway.model import Author, Content, Direction, Operator, Thread, utcnow
from gateway.storage.mongo import Storage
from gateway.translation import Translator, short_language
from operators.lookup import find_thread, live_contact
from operators.relay import BACKLOG
from operators.texts import t
from operators.translation import operator_language


def build_router() -> Router:
    """/tr."""
    router = Router(name="translate")
    router.message.register(translate_reply, Command("tr"))
    return router


async def customer_language(store: Storage, thread: Thread) -> str | None:
    """The language the customer last wrote in (as detected), else the one their channel reported."""
    for message in reversed(await store.messages.latest_for_thread(thread.id, limit=BACKLOG)):
        if message.direction is Direction.IN and message.language:
            return message.language
    contact = await live_contact(store, thread)
    return short_language(contact.language) if contact else None


async def translate_reply(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
    conversations: Conversations,
    settings: Settings,
    translator: Translator | None,
) -> None:
    """`/tr N text`: the text goes to the customer in their language; the operator's original stays as a note."""
    if translator is None:
        await message.answer(t(lang, "tr.off"))
        return
    number, _, text = (command.args or "").strip().partition(" ")
    if not text.strip():
        await message.answer(t(lang, "tr.usage"))
        return
    thread, error = await find_thread(store, operator, lang, number, command="tr", open_only=True)
    if thread is None:
        await message.answer(error)
        return
    target = await customer_language(store, thread)
    if target is None:
        await message.answer(t(lang, "tr.unknown", number=thread.number))
        return
    source = operator_language(operator, settings)
    translated = text.strip() if target == source else await translator.translate(text.strip(), source, target)
    if translated is None:
        await message.answer(t(lang, "tr.failed", number=thread.number))
        return
    draft_id = ObjectId()
    # Claimed first: a re-delivered update sends nothing twice.
    if not await store.relay.claim(message.chat.id, message.message_id, thread.id, draft_id, utcnow()):
        return
    original = t(lang, "tr.original", target=target, text=text.strip())
    await conversations.note(thread, original, author=Author.OPERATOR, author_id=operator.id, author_name=operator.name)
    await conversations.send(
        thread,
        Draft(
            Content(text=translated),
            id=draft_id,
            author=Author.OPERATOR,
            author_id=operator.id,
            author_name=operator.name,
            origin=(message.chat.id, message.message_id),
        ),
        read=True,
    )
    await message.answer(t(lang, "tr.sent", number=thread.number, target=target, text=translated))
