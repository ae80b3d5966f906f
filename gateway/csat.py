"""The satisfaction survey (CSAT): a closed thread's customer is asked to rate it 1-5 on their own channel.

Every answer names the thread it rates: a Telegram button carries `csat:<number>:<score>`, the widget's rating
frame the thread of its rating request, and a typed number (WhatsApp) rates the customer's last thread while no
newer one is open. A rating is stored once per thread; answering again changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from channels.base import InboundMessage
from gateway.config import Settings
from gateway.conversations import Conversations, Draft
from gateway.events import EventBus, ThreadEvent
from gateway.logs import log_context
from gateway.model import (
    Author,
    Contact,
    Content,
    Direction,
    IdentityRef,
    Message,
    MessageStatus,
    Template,
    Thread,
    utcnow,
)
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

MAX_COMMENT = 1000
_PAYLOAD = re.compile(r"csat:([1-9][0-9]{0,11}):([1-5])")
# "4", "4/5", "4.", "4 - great service", "5! thanks": a digit 1-5 not followed by another digit.
_ANSWER = re.compile(
    r"\s*([1-5])(?:\s*/\s*5)?(?![.,]?[0-9])(?=$|[\s.,:;!)\-\u2013\u2014])[\s.,:;!)\-\u2013\u2014]*(.*)", re.DOTALL
)
_ASK = re.compile(r"rating:([1-9][0-9]{0,11})")


@dataclass(frozen=True)
class ThreadRated(ThreadEvent):
    """A customer rated a closed thread, or added the comment to their rating; `thread.csat` holds it."""

    commented: bool = False


def rating_payload(number: int, score: int) -> str:
    """The callback data of a rating button: the thread it rates, and the score."""
    return f"csat:{number}:{score}"


def parse_payload(payload: str | None) -> tuple[int, int] | None:
    """(thread number, score) of a rating button's data; None for anything else."""
    match = _PAYLOAD.fullmatch(payload or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_answer(text: str) -> tuple[int, str | None] | None:
    """A typed answer to the question: its score and the comment after it; None when it is not one."""
    match = _ANSWER.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)), clean_comment(match.group(2))


def clean_comment(text: str | None) -> str | None:
    """A comment as stored: stripped and cut to MAX_COMMENT characters; None when empty."""
    text = (text or "").strip()[:MAX_COMMENT].strip()
    return text or None


def asked_rating(ask: str | None) -> int | None:
    """The thread number a message's `ask` wants rated ("rating:17"), or None."""
    match = _ASK.fullmatch(ask or "")
    return int(match.group(1)) if match else None


class Survey:
    """Asks for ratings when a thread closes and takes the answers, whichever channel they arrive on."""

    def __init__(self, store: Storage, bus: EventBus, conversations: Conversations, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.conversations = conversations
        self.settings = settings

    @property
    def enabled(self) -> bool:
        """Whether [csat] enabled is on."""
        return self.settings.csat.enabled

    async def ask(self, thread: Thread) -> bool:
        """Ask the customer of a just-closed thread to rate it (once, and only after an operator answered)."""
        if not self.enabled or thread.open or thread.first_response_at is None or thread.joined_into is not None:
            return False
        contact = await self.store.contacts.get(thread.contact_id)
        if contact is None or contact.blocked:
            return False
        content = self._question(thread, contact)
        if content is None or not await self.store.ratings.asked(thread.id, utcnow()):
            return False
        await self.conversations.send(thread, Draft(content, author=Author.SYSTEM))
        return True

    async def take(self, inbound: InboundMessage) -> Message | None:
        """Take a customer message that answers the survey; None when it is an ordinary message.

        The answer is kept as a message of the rated thread (which stays closed), once.
        """
        if not self.enabled:
            return None
        pressed = parse_payload(inbound.payload)
        if pressed is not None:
            number, score = pressed
            thread = await self._rated_by(inbound.sender, number)
            return await self._rate(inbound, thread, score, None) if thread else None
        if inbound.content.reply_to:
            commented = await self._comment(inbound)
            if commented is not None:
                return commented
        answer = parse_answer(inbound.content.text) if not inbound.content.media else None
        if answer is None:
            return None
        contact = await self.store.contacts.by_identity(inbound.sender.key)
        if contact is None or await self.store.threads.open_for(contact.id) is not None:
            return None
        latest = await self.store.threads.latest_for(contact.id)
        if latest is None or not self._awaits_answer(latest, inbound.sender):
            return None
        return await self._rate(inbound, latest, answer[0], answer[1])

    async def rate(self, sender: IdentityRef, number: int | None, score: int, comment: str | None) -> Thread | None:
        """A rating given outside a message (the widget's rating frame) of thread #number, or without a number of
        the sender's last thread; None when it is not theirs to rate. Rating again is no error: the first stays."""
        if not self.enabled or not 1 <= score <= 5:
            return None
        if number is None:
            contact = await self.store.contacts.by_identity(sender.key)
            latest = await self.store.threads.latest_for(contact.id) if contact else None
            number = latest.number if latest else 0
        thread = await self._rated_by(sender, number)
        if thread is None:
            return None
        rated = await self.store.ratings.rate(thread.id, score, clean_comment(comment), utcnow())
        if rated is not None:
            self._rated(rated)
            return rated
        return await self.store.threads.get(thread.id)

    def _question(self, thread: Thread, contact: Contact) -> Content | None:
        csat = self.settings.csat
        language = self._language(contact)
        question = _say(csat.question, language, self.settings.routing.default_language)
        ask = f"rating:{thread.number}"
        if thread.identity_ref.channel != "whatsapp":
            return Content(text=question, ask=ask)
        identity = contact.identity(thread.identity)
        window = timedelta(hours=self.settings.whatsapp.window_hours if self.settings.whatsapp else 24.0)
        last = identity.last_inbound_at if identity else None
        if last is not None and utcnow() - last < window:
            hint = _say(csat.reply_hint, language, self.settings.routing.default_language)
            return Content(text=f"{question}\n{hint}".strip(), ask=ask)
        templates = {t.name: t for t in (self.settings.whatsapp.templates if self.settings.whatsapp else ())}
        template = templates.get(csat.whatsapp_template or "")
        if template is None:
            return None  # outside the window only a template may be sent, and none is configured
        known = {"name": contact.display_name}
        variables = {str(i): known.get(name, "") for i, name in enumerate(template.variables, 1)}
        return Content(
            text=f"[template {template.name}]",
            template=Template(content_sid=template.content_sid, variables=variables, name=template.name),
            ask=ask,
        )

    async def _rated_by(self, sender: IdentityRef, number: int) -> Thread | None:
        """The thread #number, if this sender was asked to rate it."""
        thread = await self.store.threads.by_number(number)
        if thread is None or thread.csat_asked_at is None or thread.open:
            return None
        if thread.identity != sender.key:
            contact = await self.store.contacts.by_identity(sender.key)
            if contact is None or contact.id != thread.contact_id:
                return None
        return thread

    def _awaits_answer(self, thread: Thread, sender: IdentityRef) -> bool:
        asked = thread.csat_asked_at
        limit = timedelta(hours=self.settings.csat.answer_hours)
        return (
            asked is not None
            and thread.csat is None
            and not thread.open
            and thread.identity == sender.key
            and utcnow() - asked < limit
        )

    async def _rate(self, inbound: InboundMessage, thread: Thread, score: int, comment: str | None) -> Message:
        stored = await self._keep(inbound, thread)
        rated = await self.store.ratings.rate(thread.id, score, comment, utcnow())
        if rated is None:
            return stored  # rated already: the first rating stays
        with log_context(thread=thread.number, channel=thread.channel):
            logger.info("thread #%d rated %d/5", thread.number, score)
        self._rated(rated)
        await self._thank(rated, ask_comment=comment is None and inbound.sender.channel == "telegram")
        return stored

    async def _comment(self, inbound: InboundMessage) -> Message | None:
        """A reply to the message that asked for a comment (Telegram) is that comment."""
        ref = inbound.sender
        quoted = await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.content.reply_to or "")
        if quoted is None or quoted.direction is not Direction.OUT or quoted.content.ask != "comment":
            return None
        thread = await self.store.threads.get(quoted.thread_id)
        comment = clean_comment(inbound.content.text)
        if thread is None or thread.identity != ref.key or comment is None:
            return None
        stored = await self._keep(inbound, thread)
        commented = await self.store.ratings.comment(thread.id, quoted.id, comment)
        if commented is not None:
            self._rated(commented, commented=True)
            thanks = _say(self.settings.csat.thanks, await self._thread_language(commented), "en")
            if thanks:
                await self.conversations.send(commented, Draft(Content(text=thanks), author=Author.SYSTEM))
        return stored

    async def _thank(self, thread: Thread, *, ask_comment: bool) -> None:
        csat = self.settings.csat
        language = await self._thread_language(thread)
        if ask_comment:
            prompt = _say(csat.comment_prompt, language, self.settings.routing.default_language)
            if prompt:
                draft = Draft(Content(text=prompt, ask="comment"), id=ObjectId(), author=Author.SYSTEM)
                assert draft.id is not None
                await self.store.ratings.await_comment(thread.id, draft.id)
                await self.conversations.send(thread, draft)
                return
        thanks = _say(csat.thanks, language, self.settings.routing.default_language)
        if thanks:
            await self.conversations.send(thread, Draft(Content(text=thanks), author=Author.SYSTEM))

    async def _keep(self, inbound: InboundMessage, thread: Thread) -> Message:
        """The answer as a message of the rated thread (a re-delivered one is found, not stored again)."""
        ref = inbound.sender
        known = await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.message_id)
        if known is not None:
            return known
        message = Message(
            id=ObjectId(),
            thread_id=thread.id,
            contact_id=thread.contact_id,
            direction=Direction.IN,
            content=inbound.content,
            author=Author.CONTACT,
            channel=ref.channel,
            account=ref.account,
            identity=ref.key,
            channel_message_id=inbound.message_id,
            created_at=utcnow(),
            status=MessageStatus.RECEIVED,
            payload=inbound.payload,
        )
        try:
            return await self.store.messages.insert(message)
        except DuplicateKeyError:  # a concurrent delivery stored it first
            again = await self.store.messages.by_channel_id(ref.channel, ref.account, inbound.message_id)
            if again is None:
                raise
            return again

    def _rated(self, thread: Thread, *, commented: bool = False) -> None:
        self.bus.publish(ThreadRated(thread=thread, commented=commented))

    def _language(self, contact: Contact) -> str:
        return (contact.language or self.settings.routing.default_language).split("-")[0].lower()

    async def _thread_language(self, thread: Thread) -> str:
        contact = await self.store.contacts.get(thread.contact_id)
        return self._language(contact) if contact else self.settings.routing.default_language


def _say(texts: dict[str, str], language: str, default: str) -> str:
    return texts.get(language) or texts.get(default) or next(iter(texts.values()), "")
