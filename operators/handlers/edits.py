"""An operator's edit of a reply they sent: the customer's copy changes too, or the operator learns why not."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message as TgMessage

from channels.base import ChannelCapabilityError, SendError
from channels.telegram.content import content_of
from gateway.model import Direction, Operator
from gateway.outbox import Outbox
from gateway.storage.mongo import Storage
from operators.cards import channel_name
from operators.handlers import canned
from operators.relay import SOURCE
from operators.texts import t


def build_router() -> Router:
    """Edited messages: in the operator's chat with the bot, or a supervisor's in a forum topic."""
    router = Router(name="edits")
    router.edited_message.register(edit_reply)
    return router


async def edit_reply(message: TgMessage, operator: Operator, lang: str, store: Storage, outbox: Outbox) -> None:
    """Carry an edit of a sent reply to the customer; anything else edited (a command, a note) changes nothing."""
    entry = await store.relay.find(message.chat.id, message.message_id)
    sent = await store.messages.get(entry.gateway_message_id) if entry and entry.gateway_message_id else None
    if sent is None or sent.direction is not Direction.OUT or sent.author_id != operator.id:
        return
    text, unknown = await canned.expand(content_of(message, SOURCE, None).text, store)
    if unknown:
        await message.reply(t(lang, "canned.unknown", names=", ".join(f"!{name}" for name in unknown)))
        return
    if not text.strip() or text == sent.content.text:
        return
    thread = await store.threads.get(sent.thread_id)
    number = thread.number if thread else "?"
    try:
        await outbox.edit(sent, text)
    except ChannelCapabilityError as err:
        if outbox.can_edit(sent.channel):  # the channel edits, but not this message
            await message.reply(t(lang, "edit.refused", number=number, reason=err.reason))
        else:
            await message.reply(t(lang, "edit.impossible", number=number, channel=channel_name(lang, sent.channel)))
    except SendError as err:
        await message.reply(t(lang, "edit.failed", number=number, reason=err.reason))
