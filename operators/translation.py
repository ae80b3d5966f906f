"""Translation in the operator bot: a customer message in another language gets its translation under it."""

from __future__ import annotations

import logging

from aiogram.methods import SendMessage
from aiogram.types import ReplyParameters

from gateway.config import Settings
from gateway.events import EventBus, MessageReceived, ThreadAssigned
from gateway.model import Direction, Message, Operator, Thread
from gateway.storage.mongo import Storage
from gateway.translation import Translator, short_language
from operators.relay import BACKLOG, Relay
from operators.texts import t

logger = logging.getLogger(__name__)


def operator_language(operator: Operator, settings: Settings) -> str:
    """The language an operator reads: their Telegram language, else the bot's default."""
    fallback = settings.operator_bot.default_language if settings.operator_bot else "en"
    return short_language(operator.language) or fallback


class Translations:
    """Runs after the relay: the message is shown first, its translation follows as a reply to it, so a slow or
    failing translator never holds a message back."""

    def __init__(self, store: Storage, relay: Relay, translator: Translator, settings: Settings) -> None:
        self.store = store
        self.relay = relay
        self.translator = translator
        self.settings = settings

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe after the relay, so that each message is shown before its translation."""
        bus.subscribe(MessageReceived, self._on_message)
        bus.subscribe(ThreadAssigned, self._on_assigned)

    async def _on_message(self, event: MessageReceived) -> None:
        if event.contact.blocked or not event.message.content.text.strip():
            return
        thread = await self.store.threads.get(event.thread.id)
        operator = await self.store.operators.get(thread.operator_id) if thread and thread.operator_id else None
        if thread is None or operator is None:
            return  # translated when someone gets the conversation
        # A conversation assigned just now is shown with its backlog afterwards, which brings the translation.
        await self._show(operator, thread, event.message)

    async def _on_assigned(self, event: ThreadAssigned) -> None:
        """The new operator's backlog: each customer message in another language gets its translation."""
        if event.operator_id is None:
            return
        operator = await self.store.operators.get(event.operator_id)
        if operator is None:
            return
        for message in await self.store.messages.latest_for_thread(event.thread.id, limit=BACKLOG):
            if message.direction is Direction.IN and message.content.text.strip():
                await self._show(operator, event.thread, message)

    async def _show(self, operator: Operator, thread: Thread, message: Message) -> None:
        target = operator_language(operator, self.settings)
        translated = await self._translated(message, target)
        copy = await self.store.relay.copy_of(operator.id, message.id)
        if translated is None or copy is None:
            return
        language, text = translated
        lang = self.relay.lang(operator)
        body = t(lang, "tr.shown", number=thread.number, source=language, target=target, text=text)
        reply = ReplyParameters(message_id=copy.message_id, allow_sending_without_reply=True)
        await self.relay.send(
            operator.id, thread, None, SendMessage(chat_id=operator.id, text=body, reply_parameters=reply)
        )

    async def _translated(self, message: Message, target: str) -> tuple[str, str] | None:
        """(source language, translation into target), detected and translated once per target; None when the
        message is in the target language already, or the translator could not say."""
        if message.language is not None and message.translated_to == target:
            return (message.language, message.translation) if message.translation else None
        language = message.language or await self.translator.detect(message.content.text)
        if language is None:
            return None
        if language == target:
            await self.store.messages.set_translation(message.id, language, None, target)
            return None
        translation = await self.translator.translate(message.content.text, language, target)
        if translation is None:
            return None  # tried again the next time the message is shown
        await self.store.messages.set_translation(message.id, language, translation, target)
        return language, translation
