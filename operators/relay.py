"""Shows conversations to operators: a card on assignment, then the customer's messages as they come."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from aiogram import Bot
from aiogram.methods import SendAudio, SendDocument, SendLocation, SendMessage, SendPhoto, SendVideo, SendVoice
from aiogram.methods.base import TelegramMethod
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from aiogram.types import Message as TgMessage
from bson import ObjectId

from channels.base import SendError
from channels.telegram.files import download
from channels.telegram.limits import CAPTION_LIMIT, TEXT_LIMIT, fits
from channels.telegram.long_texts import split_message
from channels.telegram.sender import Sender
from gateway.config import Settings
from gateway.events import (
    EventBus,
    MessageEdited,
    MessageReceived,
    MessageStatusChanged,
    MessageStored,
    ThreadAssigned,
    ThreadClosed,
    ThreadErased,
)
from gateway.inputs import file_name, media_type
from gateway.media import MediaSources
from gateway.model import (
    Author,
    Contact,
    Direction,
    Kind,
    Media,
    Message,
    MessageStatus,
    Operator,
    Thread,
    to_doc,
    utcnow,
)
from gateway.storage.mongo import Storage
from gateway.vcards import parse_vcard
from operators.answers import short
from operators.cards import card_keyboard, card_text, message_body, message_parts, message_text, tagged_parts
from operators.texts import language, t

logger = logging.getLogger(__name__)

BACKLOG = 10
# Characters of a quoted message shown above the answer, when the chat has no copy of it to reply to.
QUOTE_LIMIT = 200
# Flood-control waits in an operator chat are sat out up to this long; nothing else would show the message.
MAX_WAIT = 300.0
# Failures an operator can sensibly try again (the customer may unblock the bot, a network may recover).
RETRYABLE = {"blocked", "unavailable", "rate_limited"}
SOURCE = "operator_bot"
# An operator's language is looked up at most this often: once per half minute, not once per customer message.
LANGUAGE_SECONDS = 30.0
# How a file is shown, by kind: the method and the parameter that carries the file (else a document).
_UPLOADS: dict[Kind, tuple[Callable[..., TelegramMethod[TgMessage]], str]] = {
    Kind.IMAGE: (SendPhoto, "photo"),
    Kind.VOICE: (SendVoice, "voice"),
    Kind.AUDIO: (SendAudio, "audio"),
    Kind.VIDEO: (SendVideo, "video"),
}

T = TypeVar("T")


class Relay:
    """Sends cards and messages into operator chats and remembers which thread each belongs to."""

    def __init__(self, store: Storage, media: MediaSources, settings: Settings, holder: str = "") -> None:
        """`holder` names this process in reservations of what it shows (gateway.leases)."""
        self.store = store
        self.media = media
        self.settings = settings
        self.holder = holder
        self.bot: Bot | None = None
        # Called with an operator's chat id and the reason when Telegram refuses to write there (403).
        self.on_unreachable: Callable[[int, str], Awaitable[None]] | None = None
        # Told, by chat, when Telegram refuses a call there (the mirror learns of its deleted topics so).
        self.refusals: dict[int, Callable[[Thread | None, TelegramMethod[Any], SendError], Awaitable[None]]] = {}
        self._sender = Sender()
        self._languages: dict[int, tuple[float, str]] = {}  # operator id -> (known until, language)

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ThreadAssigned, self._on_assigned)
        bus.subscribe(MessageReceived, self._on_message)
        bus.subscribe(MessageEdited, self._on_edited)
        bus.subscribe(MessageStored, self._on_stored)
        bus.subscribe(MessageStatusChanged, self._on_status)
        bus.subscribe(ThreadClosed, self._on_closed)

    def pace(self, chat_id: int, per_minute: int) -> None:
        """Space the calls into a group chat to stay inside its flood limit."""
        self._sender.pace(chat_id, per_minute)

    def lang(self, operator: Operator) -> str:
        """The operator's language, remembered for `language_of`."""
        assert self.settings.operator_bot is not None
        lang = language(operator.language, self.settings.operator_bot.default_language)
        self._languages[operator.id] = (time.monotonic() + LANGUAGE_SECONDS, lang)
        return lang

    async def language_of(self, operator_id: int) -> str | None:
        """An operator's language, from the last half minute's lookups or read again; None: no such operator."""
        known = self._languages.get(operator_id)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        operator = await self.store.operators.get_brief(operator_id)
        return self.lang(operator) if operator is not None else None

    async def show_thread(
        self,
        operator: Operator,
        thread: Thread,
        *,
        comment: str | None = None,
        by: int | None = None,
        chat_id: int | None = None,
        topic_id: int | None = None,
        contact: Contact | None = None,
        first: bool = False,
    ) -> None:
        """The card, then the latest messages of the thread (into a forum topic when topic_id is given).
        `contact`: the thread's card, when the caller has it at hand; `first`: its first conversation."""
        chat_id = chat_id or operator.id
        lang = self.lang(operator)
        if contact is None or contact.id != thread.contact_id:
            contact = await self.store.contacts.get(thread.contact_id)
        if contact is None:
            return
        previous = await self.store.threads.get(thread.previous_thread_id) if thread.previous_thread_id else None
        author = await self.store.operators.get(by) if by else None
        text = card_text(
            lang,
            thread,
            contact,
            earlier=0 if first else await self.store.threads.count_for(contact.id) - 1,
            comment=comment,
            comment_author=author.name if author else None,
            previous_number=previous.number if previous else None,
        )
        await self.send(
            chat_id,
            thread,
            None,
            SendMessage(
                chat_id=chat_id, text=text, reply_markup=card_keyboard(lang, thread.number), message_thread_id=topic_id
            ),
        )
        for message in await self.store.messages.latest_for_thread(thread.id, limit=BACKLOG):
            await self.show_once(chat_id, lang, thread, message, topic_id=topic_id)

    async def show_once(
        self,
        chat_id: int,
        lang: str,
        thread: Thread,
        message: Message,
        *,
        topic_id: int | None = None,
        take_over: str | None = None,
    ) -> bool:
        """Show a stored message in a chat (or topic) unless it was, or is being, shown there already: the live
        relay, a card's backlog and the sweep, in any process, show it once between them. `take_over` is the
        process whose reservation to take over (it stopped before showing). True when this call showed it."""
        key = f"{topic_id}:{message.id}" if topic_id else str(message.id)
        now = utcnow()
        if take_over is not None:
            mine = await self.store.relay.take_over(chat_id, key, take_over, self.holder, now)
        else:
            mine = await self.store.relay.reserve(chat_id, key, thread.id, self.holder, now)
        if mine:
            await self.show_message(chat_id, lang, thread, message, topic_id=topic_id)
        return mine

    async def show_message(
        self,
        chat_id: int,
        lang: str,
        thread: Thread,
        message: Message,
        reply_to: int | None = None,
        topic_id: int | None = None,
    ) -> None:
        """One stored message in an operator chat (or a forum topic): media as media, text tagged #N."""
        if message.content.kind is Kind.CONTACT and message.content.shared_contact is None and message.content.media:
            message = await self._read_card(message)
        quote = None
        if reply_to is None:
            reply_to, quote = await self._context(chat_id, lang, message, topic_id)
        texts = message_parts(lang, thread, message, quote=quote)
        content = message.content
        if content.kind is Kind.CONTACT and content.shared_contact is not None:
            # The name and numbers say it all; the vCard file itself would only repeat them.
            await self._texts(chat_id, thread, message, texts, reply_to, topic_id)
            return
        if content.kind is Kind.LOCATION and content.location:
            await self._texts(chat_id, thread, message, texts, reply_to, topic_id)
            loc = content.location
            await self.send(
                chat_id,
                thread,
                message.id,
                SendLocation(
                    chat_id=chat_id, latitude=loc.latitude, longitude=loc.longitude, message_thread_id=topic_id
                ),
            )
            return
        if content.media:
            caption = message_text(lang, thread, message, quote)
            for media in content.media:
                await self._show_media(chat_id, lang, thread, message, media, caption, reply_to, topic_id, quote)
                caption = f"#{thread.number}"  # the tag, not the text, on the second file
            return
        await self._texts(chat_id, thread, message, texts, reply_to, topic_id)

    async def _context(
        self, chat_id: int, lang: str, message: Message, topic_id: int | None
    ) -> tuple[int | None, str | None]:
        """What a message answers, as this chat can show it: the copy here to reply to, else the quoted text."""
        content = message.content
        quoted = None
        if content.reply_to and ObjectId.is_valid(content.reply_to):
            quoted = await self.store.messages.get(ObjectId(content.reply_to))
        # In a forum, a copy may be in another topic, where a reply cannot point.
        if quoted is not None and topic_id is None:
            copy = await self.store.relay.copy_of(chat_id, quoted.id)
            if copy is not None:
                return copy.message_id, None
        text = content.quote or (message_body(lang, quoted) if quoted is not None else None)
        return None, short(text, QUOTE_LIMIT) if text else None

    async def _texts(
        self,
        chat_id: int,
        thread: Thread,
        message: Message,
        texts: list[str],
        reply_to: int | None,
        topic_id: int | None,
    ) -> None:
        """A message's texts, in order; the first is the reply, when it is one."""
        for i, text in enumerate(texts):
            reply = _reply(reply_to) if i == 0 else None
            await self.send(
                chat_id,
                thread,
                message.id,
                SendMessage(chat_id=chat_id, text=text, reply_parameters=reply, message_thread_id=topic_id),
            )

    async def _show_media(
        self,
        chat_id: int,
        lang: str,
        thread: Thread,
        message: Message,
        media: Media,
        caption: str,
        reply_to: int | None,
        topic_id: int | None = None,
        quote: str | None = None,
    ) -> None:
        name = media.name or message.content.kind.value
        try:
            data = await self.media.fetch(media)
        except SendError as err:
            key = "relay.too_big" if err.code == "too_large" else "relay.media_failed"
            text = f"{caption}\n{t(lang, key, name=name, reason=err.reason)}"
            await self.send(
                chat_id, thread, message.id, SendMessage(chat_id=chat_id, text=text, message_thread_id=topic_id)
            )
            return
        except Exception as err:  # noqa: BLE001 - a file we cannot fetch must not hide the message
            logger.warning("could not fetch %s for the operator: %r", media.ref, err)
            text = f"{caption}\n{t(lang, 'relay.media_failed', name=name, reason=type(err).__name__)}"
            await self.send(
                chat_id, thread, message.id, SendMessage(chat_id=chat_id, text=text, message_thread_id=topic_id)
            )
            return
        upload = BufferedInputFile(data, filename=file_name(media.name) or _default_name(message.content.kind, media))
        short = caption if fits(caption, CAPTION_LIMIT) else f"#{thread.number}"
        common: dict[str, Any] = {"caption": short, "reply_parameters": _reply(reply_to), "message_thread_id": topic_id}
        method, field = _UPLOADS.get(message.content.kind, (SendDocument, "document"))
        await self.send(chat_id, thread, message.id, method(chat_id=chat_id, **{field: upload}, **common))
        if short != caption:
            # Too long for a caption: the text follows the file, whole.
            texts = message_parts(lang, thread, message, quote=quote)
            await self._texts(chat_id, thread, message, texts, None, topic_id)

    async def send(
        self, chat_id: int, thread: Thread | None, message_id: ObjectId | None, method: TelegramMethod[T]
    ) -> T | None:
        """Call the Bot API for a chat, in order per chat and waiting out flood limits; remember the thread of
        every message sent (when it is about one). A text too long for one message goes in parts (the buttons
        under the last); the first part is returned. None (logged) when Telegram refused."""
        if isinstance(method, SendMessage) and not fits(method.text, TEXT_LIMIT):
            # Each part is remembered, so that a reply to any of them finds the thread.
            first: T | None = None
            for i, piece in enumerate(split_message(method)):
                sent = await self._send_one(chat_id, thread, message_id, cast(TelegramMethod[T], piece))
                first = sent if i == 0 else first
            return first
        return await self._send_one(chat_id, thread, message_id, method)

    async def _send_one(
        self, chat_id: int, thread: Thread | None, message_id: ObjectId | None, method: TelegramMethod[T]
    ) -> T | None:
        assert self.bot is not None
        async with self._sender.hold(self.bot, chat_id):
            deadline = asyncio.get_running_loop().time() + MAX_WAIT
            try:
                result = await self._sender.call(self.bot, method, deadline=deadline, who="operator bot")
            except SendError as err:
                about = f"#{thread.number}" if thread else "a notice"
                logger.warning("could not show %s in chat %s: %s", about, chat_id, err.reason)
                if err.code == "blocked" and chat_id > 0 and self.on_unreachable is not None:
                    await self.on_unreachable(chat_id, err.reason)  # a private chat: an operator's
                if (refused := self.refusals.get(chat_id)) is not None:
                    await refused(thread, method, err)
                return None
        if isinstance(result, TgMessage) and thread is not None:
            await self.store.relay.add(chat_id, result.message_id, thread.id, message_id, utcnow())
        return result

    async def _read_card(self, message: Message) -> Message:
        """A shared contact's vCard, read (and remembered on the message) when the message is first shown: the
        channel does not fetch inside its webhook. Unreadable, it is shown as the file it is."""
        try:
            data = await self.media.fetch(message.content.media[0])
        except (SendError, LookupError):
            return message
        card = parse_vcard(data, self.settings.contacts.default_region)
        if card is None:
            return message
        content = replace(message.content, shared_contact=card)
        await self.store.messages.update(message.id, {"shared_contact": to_doc(card)})
        return replace(message, content=content)

    async def fetch_media(self, media: Media) -> bytes:
        """Bytes of a file an operator sent to the bot (the operator bot as a media source)."""
        assert self.bot is not None
        return await download(self.bot, media.ref, media.size)

    async def _on_assigned(self, event: ThreadAssigned) -> None:
        if event.operator_id is not None:
            operator = event.operator or await self.store.operators.get(event.operator_id)
            if operator is not None:
                # A card made with this very conversation, assigned the moment it came: nothing earlier to count.
                card = event.contact
                first = event.reason == "new" and card is not None and card.created_at == event.thread.created_at
                await self.show_thread(
                    operator, event.thread, comment=event.comment, by=event.by, contact=event.contact, first=first
                )
        # The operator who lost the chat is told by operators.releases.

    async def _on_message(self, event: MessageReceived) -> None:
        # A thread that was not assigned when the message arrived is shown with its backlog on assignment.
        if event.contact.blocked or event.thread.operator_id is None:
            return
        operator_id = event.thread.operator_id
        if (lang := await self.language_of(operator_id)) is not None:
            await self.show_once(operator_id, lang, event.thread, event.message)

    async def _on_stored(self, event: MessageStored) -> None:
        """A message someone else sent into an operator's conversation (the REST API, another operator, a
        supervisor in the forum topic) is shown in the operator's chat, marked with its author."""
        message, owner = event.message, event.thread.operator_id
        if message.direction is not Direction.OUT or message.author is not Author.OPERATOR:
            return
        if owner is None or message.author_id == owner:
            return
        operator = await self.store.operators.get_brief(owner)
        if operator is not None:
            await self.show_once(operator.id, self.lang(operator), event.thread, message)

    async def _on_edited(self, event: MessageEdited) -> None:
        thread = await self.store.threads.get(event.thread.id)
        if thread is None or thread.operator_id is None:
            return
        operator = await self.store.operators.get(thread.operator_id)
        if operator is None:
            return
        copy = await self.store.relay.copy_of(operator.id, event.message.id)
        texts = tagged_parts(thread.number, t(self.lang(operator), "relay.edited", text=event.message.content.text))
        await self._texts(operator.id, thread, event.message, texts, copy.message_id if copy else None, None)

    async def _on_status(self, event: MessageStatusChanged) -> None:
        message = event.message
        if message.status is not MessageStatus.FAILED or message.author is not Author.OPERATOR:
            return
        if message.author_id is None:
            return
        operator = await self.store.operators.get(message.author_id)
        if operator is None:
            return
        lang = self.lang(operator)
        text, keyboard = self._failure(lang, event.thread, message)
        copy = await self.store.relay.original_of(operator.id, message.id)
        await self.send(
            operator.id,
            event.thread,
            message.id,
            SendMessage(
                chat_id=operator.id,
                text=text,
                reply_markup=keyboard,
                reply_parameters=_reply(copy.message_id if copy else None),
            ),
        )

    def _failure(self, lang: str, thread: Thread, message: Message) -> tuple[str, InlineKeyboardMarkup | None]:
        """What to tell the operator about a failed message, and what they can do about it."""
        code = message.error_code
        buttons: list[list[InlineKeyboardButton]] = []
        if code == "window_closed" or code == "63016":
            templates = self.settings.whatsapp.templates if self.settings.whatsapp else ()
            text = t(lang, "delivery.window" if templates else "delivery.window_no_templates")
            buttons = [
                [
                    InlineKeyboardButton(
                        text=t(lang, "button.template", name=tpl.name), callback_data=f"tpl:{thread.number}:{i}"
                    )
                ]
                for i, tpl in enumerate(templates)
            ]
        elif code == "blocked":
            text = t(lang, "delivery.blocked", number=thread.number)
        elif code == "too_large":
            text = t(lang, "delivery.too_large", number=thread.number, reason=message.error)
        else:
            text = t(lang, "delivery.failed", number=thread.number, reason=message.error or code or "?")
        if code in RETRYABLE:
            buttons.append([InlineKeyboardButton(text=t(lang, "button.retry"), callback_data=f"retry:{message.id}")])
        return text, InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None

    async def _on_closed(self, event: ThreadClosed) -> None:
        owner = event.thread.operator_id
        # A thread joined into another by a merge is announced with the merge itself.
        if owner is None or owner == event.by or event.thread.joined_into is not None:
            return
        operator = await self.store.operators.get(owner)
        closer = await self.store.operators.get(event.by) if event.by else None
        if operator is not None:
            lang = self.lang(operator)
            text = (
                t(lang, "moved.erased", number=event.thread.number)
                if isinstance(event, ThreadErased)
                else t(
                    lang,
                    "moved.closed",
                    number=event.thread.number,
                    who=closer.name if closer else t(lang, "moved.by_system"),
                )
            )
            await self.send(operator.id, event.thread, None, SendMessage(chat_id=operator.id, text=text))


def _reply(message_id: int | None) -> ReplyParameters | None:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True) if message_id else None


def _default_name(kind: Kind, media: Media) -> str:
    extension = (media_type(media.mime_type) or "application/octet-stream").split("/")[-1]
    return f"{kind.value}.{extension}"
