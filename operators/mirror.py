"""The supervisors' forum mirror: each conversation in its own topic (card first, then both sides), and
supervisors answering customers by writing in that topic.

Active only when `operator_bot.supervisors_chat_id` names a forum supergroup in which the bot may manage
topics. The topic is stored on the thread (`topic_chat_id`, `topic_id`); a reopened conversation is a new
thread and gets a new topic.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import F, Router
from aiogram.enums import ContentType
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import CloseForumTopic, CreateForumTopic, SendMessage
from aiogram.methods.base import TelegramMethod
from aiogram.types import Message as TgMessage
from aiogram.types import ReplyParameters
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from channels.base import SendError
from channels.telegram.errors import topic_missing
from channels.telegram.filters import Magic
from channels.telegram.limits import TOPIC_NAME_LIMIT
from gateway.config import Settings
from gateway.conversations import Conversations
from gateway.events import EventBus, MessageEdited, MessageReceived, MessageStored, ThreadAssigned, ThreadClosed
from gateway.model import Author, Message, Operator, Thread, utcnow
from gateway.storage.mongo import Storage
from operators.drafts import draft_of
from operators.mirror_queue import MirrorQueue
from operators.relay import Relay
from operators.texts import t

logger = logging.getLogger(__name__)

# What a supervisor can write in a topic; anything else there (service messages, ...) is not for customers.
CONTENT = {
    ContentType.TEXT,
    ContentType.PHOTO,
    ContentType.DOCUMENT,
    ContentType.VOICE,
    ContentType.AUDIO,
    ContentType.VIDEO,
    ContentType.LOCATION,
    ContentType.STICKER,
    ContentType.ANIMATION,
    ContentType.VIDEO_NOTE,
    ContentType.CONTACT,
}


class Mirror:
    """Follows the bus and mirrors every conversation into its topic of the supervisors' chat."""

    def __init__(self, store: Storage, relay: Relay, settings: Settings, queue: MirrorQueue) -> None:
        config = settings.operator_bot
        assert config is not None and config.supervisors_chat_id is not None
        self.store = store
        self.relay = relay
        self.queue = queue
        self.chat_id = config.supervisors_chat_id
        relay.pace(self.chat_id, config.supervisors_messages_per_minute)
        relay.refusals[self.chat_id] = self._refused
        # Threads whose topic Telegram said is gone during the current job, and that topic.
        self._lost: dict[ObjectId, int] = {}
        self.lang = config.default_language
        # The supervisors' chat reads the relay's cards like one operator speaking the bot's default language.
        self.viewer = Operator(id=self.chat_id, name="supervisors", language=config.default_language)
        self._forum: bool | None = None

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe after routing and the relay; the work itself goes into the mirror's own queue."""
        bus.subscribe(MessageReceived, self._queued(self._on_received))
        bus.subscribe(MessageStored, self._queued(self._on_stored))
        bus.subscribe(MessageEdited, self._queued(self._on_edited))
        bus.subscribe(ThreadAssigned, self._queued(self._on_assigned))
        bus.subscribe(ThreadClosed, self._queued(self._on_closed))

    def _queued(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        async def put(event: Any) -> None:
            self.queue.put(lambda: self._run(handler, event))

        return put

    async def _run(self, handler: Callable[[Any], Awaitable[None]], event: Any) -> None:
        """Handle an event; when its topic turned out to be deleted, once more in a new topic."""
        await handler(event)
        thread: Thread = event.thread
        lost = self._lost.pop(thread.id, None)
        if lost is None:
            return
        if await self.store.threads.forget_topic(thread.id, self.chat_id, lost):
            logger.info("the topic of #%s was deleted: opening a new one", thread.number)
        # A new topic starts with the card and the latest messages, this one among them.
        await handler(event)

    async def _refused(self, thread: Thread | None, method: TelegramMethod[Any], err: SendError) -> None:
        topic = getattr(method, "message_thread_id", None)
        if thread is not None and topic is not None and topic_missing(err):
            self._lost[thread.id] = topic

    async def _on_received(self, event: MessageReceived) -> None:
        if not event.contact.blocked:
            await self._post(event.thread, event.message)

    async def _on_stored(self, event: MessageStored) -> None:
        await self._post(event.thread, event.message)

    async def _on_edited(self, event: MessageEdited) -> None:
        topic = await self._topic(event.thread)
        if topic is None:
            return
        copy = await self.store.relay.copy_of(self.chat_id, event.message.id)
        text = t(self.lang, "mirror.edited", number=event.thread.number, text=event.message.content.text)
        reply = ReplyParameters(message_id=copy.message_id, allow_sending_without_reply=True) if copy else None
        await self.relay.send(
            self.chat_id,
            event.thread,
            event.message.id,
            SendMessage(chat_id=self.chat_id, text=text, message_thread_id=topic, reply_parameters=reply),
        )

    async def _on_assigned(self, event: ThreadAssigned) -> None:
        topic = await self._topic(event.thread)
        if topic is None:
            return
        number = event.thread.number
        operator = await self.store.operators.get(event.operator_id) if event.operator_id is not None else None
        text = (
            t(self.lang, "mirror.assigned", number=number, name=operator.name)
            if operator
            else t(self.lang, "mirror.queued", number=number)
        )
        await self._say(event.thread, topic, text)

    async def _on_closed(self, event: ThreadClosed) -> None:
        thread = event.thread
        if thread.topic_id is None or thread.topic_chat_id != self.chat_id:
            return
        closer = await self.store.operators.get(event.by) if event.by is not None else None
        await self._say(
            thread,
            thread.topic_id,
            t(
                self.lang,
                "mirror.closed",
                number=thread.number,
                who=closer.name if closer else t(self.lang, "mirror.system"),
            ),
        )
        topic = thread.topic_id
        await self.relay.send(
            self.chat_id, thread, None, CloseForumTopic(chat_id=self.chat_id, message_thread_id=topic)
        )

    def catch_up(self, thread: Thread, message: Message, reserved_by: str | None) -> None:
        """Queue a customer message the topic never got (the process that stored it stopped first); `reserved_by`:
        the stopped process that had reserved showing it."""
        logger.info("message %s was never mirrored into #%s's topic: posting it now", message.id, thread.number)
        self.queue.put(lambda: self._post(thread, message, take_over=reserved_by))

    async def _post(self, thread: Thread, message: Message, take_over: str | None = None) -> None:
        """One message of the conversation into its topic, unless the topic already shows it."""
        topic = await self._topic(thread)
        if topic is None:
            return
        # A new topic starts with the latest messages, and a supervisor's answer is already there as they wrote it.
        if await self.store.relay.copy_of(self.chat_id, message.id) is not None:
            return
        await self.relay.show_once(self.chat_id, self.lang, thread, message, topic_id=topic, take_over=take_over)

    async def _topic(self, thread: Thread) -> int | None:
        """The thread's topic, opened (with the card and the latest messages) when an open thread has none."""
        current = await self.store.threads.get(thread.id)
        if current is None:
            return None
        if current.topic_id is not None and current.topic_chat_id == self.chat_id:
            return current.topic_id
        if not current.open or not await self._is_forum():
            return None
        topic = await self._open_topic(current)
        if topic is None:
            return None
        await self.store.threads.update(current.id, {"topic_chat_id": self.chat_id, "topic_id": topic})
        await self.relay.show_thread(self.viewer, current, chat_id=self.chat_id, topic_id=topic)
        return topic

    async def _open_topic(self, thread: Thread) -> int | None:
        contact = await self.store.contacts.get(thread.contact_id)
        name = f"#{thread.number} · {contact.display_name if contact else '?'}"[:TOPIC_NAME_LIMIT]
        # Creating a topic counts against the group's flood limit like any message; relay.send waits it out.
        topic = await self.relay.send(self.chat_id, thread, None, CreateForumTopic(chat_id=self.chat_id, name=name))
        return topic.message_thread_id if topic is not None else None

    async def _is_forum(self) -> bool:
        """Whether the supervisors' chat has topics; asked once, and said once in the log when it has not."""
        if self._forum is None:
            assert self.relay.bot is not None
            try:
                chat = await self.relay.bot.get_chat(self.chat_id)
            except TelegramAPIError as err:
                logger.warning("supervisors chat %s is not reachable (%s); not mirrored for now", self.chat_id, err)
                return False
            self._forum = bool(chat.is_forum)
            if not self._forum:
                logger.warning(
                    "operator_bot.supervisors_chat_id %s is not a forum supergroup: conversations are "
                    "not mirrored there",
                    self.chat_id,
                )
        return self._forum

    async def _say(self, thread: Thread, topic: int, text: str) -> None:
        await self.relay.send(
            self.chat_id, thread, None, SendMessage(chat_id=self.chat_id, text=text, message_thread_id=topic)
        )


def build_router() -> Router:
    """Messages in the conversation topics of the supervisors' chat; included first, before the commands."""
    router = Router(name="mirror")
    router.message.register(
        answer_from_topic, in_conversation_topic, Magic(F.content_type.in_(CONTENT)), Magic(~F.text.startswith("/"))
    )
    return router


async def in_conversation_topic(message: TgMessage, settings: Settings) -> bool:
    """A message in a topic of the supervisors' chat (the General topic is not one)."""
    config = settings.operator_bot
    return (
        config is not None
        and config.supervisors_chat_id == message.chat.id
        and bool(message.is_topic_message)
        and message.message_thread_id is not None
    )


async def answer_from_topic(
    message: TgMessage, operator: Operator, lang: str, store: Storage, conversations: Conversations
) -> None:
    """A supervisor writing in a conversation's topic answers its customer, as its operator would."""
    if not operator.is_supervisor:
        await _refuse_once(message, operator, lang, store)
        return
    assert message.message_thread_id is not None
    thread = await store.threads.by_topic(message.chat.id, message.message_thread_id)
    if thread is None:
        return  # a topic the mirror did not open
    if not thread.open:
        await message.reply(t(lang, "reply.closed", number=thread.number))
        return
    draft = draft_of(message, operator, await _answered(message, thread, store))
    if draft is None:
        await message.reply(t(lang, "reply.unsupported"))
        return
    # Claimed before the send: never sent twice, and the mirror knows the topic already shows this answer.
    assert draft.id is not None
    if not await store.relay.claim(message.chat.id, message.message_id, thread.id, draft.id, utcnow()):
        return
    # The thread's operator is shown it by the relay, as every message someone else sends into their thread.
    await conversations.send(thread, draft)


async def _answered(message: TgMessage, thread: Thread, store: Storage) -> Message | None:
    """The customer message a supervisor replied to in the topic, if they replied to one."""
    if message.reply_to_message is None:
        return None
    entry = await store.relay.find(message.chat.id, message.reply_to_message.message_id)
    if entry is None or entry.thread_id != thread.id or entry.gateway_message_id is None:
        return None
    original = await store.messages.get(entry.gateway_message_id)
    return original if original is not None and original.author is Author.CONTACT else None


async def _refuse_once(message: TgMessage, operator: Operator, lang: str, store: Storage) -> None:
    try:
        await store.db["mirror_refusals"].insert_one({"_id": operator.id, "at": utcnow()})
    except DuplicateKeyError:
        return
    await message.reply(t(lang, "mirror.not_supervisor"))
