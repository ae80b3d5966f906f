"""How far an operator's message got, shown on the message itself: a reaction for its status, and a note while
its send waits (a platform's flood control, a retry), taken away once it goes."""

from __future__ import annotations

import logging
from typing import Final

from aiogram.methods import DeleteMessage, EditMessageText, SendMessage, SetMessageReaction
from aiogram.types import ReactionTypeEmoji, ReplyParameters
from bson import ObjectId

from gateway.events import EventBus, MessageStatusChanged, MessageWaiting
from gateway.model import Author, Message, MessageStatus, Thread, utcnow
from gateway.storage.mongo import Storage
from operators.answers import duration
from operators.relay import Relay
from operators.texts import t

logger = logging.getLogger(__name__)

# Reactions a bot may set (Telegram's standard set); one per message.
MARKS: Final = {
    MessageStatus.QUEUED: "✍",
    MessageStatus.SENT: "👌",
    MessageStatus.DELIVERED: "👍",
    MessageStatus.READ: "👀",
    MessageStatus.FAILED: "💔",
}
# A send held up longer than this is explained to its author.
WAIT_SHOWN: Final = 10.0


class DeliveryMarks:
    """Keeps the reaction on each operator's message in step with its delivery status."""

    def __init__(self, store: Storage, relay: Relay) -> None:
        self.store = store
        self.relay = relay

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(MessageStatusChanged, self._on_status)
        bus.subscribe(MessageWaiting, self._on_waiting)

    async def _on_status(self, event: MessageStatusChanged) -> None:
        message = event.message
        original = await self._original(message)
        if original is None:
            return
        chat_id, message_id = original
        if message.status is MessageStatus.QUEUED and message.error and message.next_attempt_at is not None:
            seconds = (message.next_attempt_at - utcnow()).total_seconds()
            if seconds > WAIT_SHOWN:
                await self._show_wait(event.thread, message, chat_id, message_id, seconds, message.error)
        elif message.status is not MessageStatus.QUEUED and message.wait_note:
            await self._end_wait(message.id)  # (the message as stored says whether it has a note to take away)
        await self._react(chat_id, message_id, MARKS[message.status])

    async def _on_waiting(self, event: MessageWaiting) -> None:
        if event.seconds <= WAIT_SHOWN:
            return
        original = await self._original(event.message)
        if original is not None:
            chat_id, message_id = original
            await self._show_wait(event.thread, event.message, chat_id, message_id, event.seconds, event.reason)
            await self._react(chat_id, message_id, MARKS[MessageStatus.QUEUED])

    async def _original(self, message: Message) -> tuple[int, int] | None:
        """The operator's own message: in their chat with the bot, or a supervisor's in the forum topic."""
        if message.author is not Author.OPERATOR or message.author_id is None:
            return None
        if message.origin is not None:
            origin_chat, origin_message = message.origin
            return origin_chat, origin_message
        config = self.relay.settings.operator_bot
        forum = config.supervisors_chat_id if config is not None else None
        for chat_id in (message.author_id, forum):
            entry = await self.store.relay.original_of(chat_id, message.id) if chat_id is not None else None
            if entry is not None:
                return entry.chat_id, entry.message_id
        return None

    async def _react(self, chat_id: int, message_id: int, emoji: str) -> None:
        reaction = SetMessageReaction(chat_id=chat_id, message_id=message_id, reaction=[ReactionTypeEmoji(emoji=emoji)])
        await self.relay.send(chat_id, None, None, reaction)

    async def _show_wait(
        self, thread: Thread, message: Message, chat_id: int, message_id: int, seconds: float, reason: str
    ) -> None:
        """One note under the operator's message, saying why it waits; a later wait changes the same note."""
        operator = await self.store.operators.get(message.author_id) if message.author_id is not None else None
        if operator is None:
            return
        lang = self.relay.lang(operator)
        text = t(lang, "delivery.waiting", number=thread.number, reason=reason, wait=duration(lang, seconds))
        # Kept with the message: whichever process sends it in the end takes the note away.
        note = await self.store.messages.wait_note(message.id)
        if note is not None:
            await self.relay.send(chat_id, None, None, EditMessageText(chat_id=chat_id, message_id=note[1], text=text))
            return
        reply = ReplyParameters(message_id=message_id, allow_sending_without_reply=True)
        topic = thread.topic_id if chat_id != operator.id else None  # a supervisor's message in the forum
        note_method = SendMessage(chat_id=chat_id, text=text, reply_parameters=reply, message_thread_id=topic)
        sent = await self.relay.send(chat_id, thread, message.id, note_method)
        if sent is not None:
            await self.store.messages.set_wait_note(message.id, chat_id, sent.message_id)

    async def _end_wait(self, message_id: ObjectId) -> None:
        note = await self.store.messages.wait_note(message_id, take=True)
        if note is not None:
            await self.relay.send(note[0], None, None, DeleteMessage(chat_id=note[0], message_id=note[1]))
