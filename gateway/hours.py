"""Business hours, and the notice a customer gets at once when nobody can answer: closed, or nobody online."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.config import WEEKDAYS, RoutingSettings, Settings
from gateway.conversations import Conversations, Draft
from gateway.events import EventBus, MessageReceived
from gateway.model import Author, Contact, Content, Thread
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

_DAY_NAMES = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
}
_TODAY = {"en": "today", "ru": "сегодня"}
_TOMORROW = {"en": "tomorrow", "ru": "завтра"}


class BusinessHours:
    """When the desk is open, in its time zone; without business_hours it is always open."""

    def __init__(self, routing: RoutingSettings) -> None:
        self.zone = ZoneInfo(routing.time_zone)
        self.always = routing.business_hours is None
        hours = routing.business_hours or {}
        self.days = [hours.get(day, ()) for day in WEEKDAYS]
        self.holidays = frozenset(routing.holidays)

    def is_open(self, now: datetime) -> bool:
        """Whether `now` (aware) falls within the hours, holidays excluded."""
        if self.always:
            return True
        local = now.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        moment = local.time().replace(tzinfo=None)
        return any(start <= moment < end for start, end in self.days[local.weekday()])

    def next_opening(self, now: datetime) -> datetime | None:
        """The next time the desk opens after `now`, in its time zone; None when it never does."""
        if self.always:
            return now.astimezone(self.zone)
        local = now.astimezone(self.zone)
        for offset in range(370):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _ in self.days[day.weekday()]:
                opening = datetime.combine(day, start, self.zone)
                if opening > local:
                    return opening
        return None


def describe_opening(opening: datetime, now: datetime, language: str) -> str:
    """`today at 09:00`, `tomorrow at 09:00`, `Monday at 09:00` (in the desk's time zone, which is named)."""
    lang = language if language in _DAY_NAMES else "en"
    days = (opening.date() - now.astimezone(opening.tzinfo).date()).days
    if days == 0:
        day = _TODAY[lang]
    elif days == 1:
        day = _TOMORROW[lang]
    elif days < 7:
        day = _DAY_NAMES[lang][opening.weekday()]
    else:
        day = opening.date().isoformat()
    at = "в" if lang == "ru" else "at"
    return f"{day} {at} {opening:%H:%M} ({opening.tzinfo})"


class AwayNotice:
    """Tells a customer at once, once per conversation, when no operator is online: when the desk opens, or that
    someone answers as soon as they are back. The widget is offered to leave an e-mail address for the answer."""

    def __init__(self, store: Storage, bus: EventBus, conversations: Conversations, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.conversations = conversations
        self.settings = settings
        self.hours = BusinessHours(settings.routing)

    def subscribe(self) -> None:
        """Without an operator bot nobody is ever online: tell every new conversation, when business hours or an
        offline message say what (a gateway answered only through the API says nothing of its own). With one,
        routing calls `tell` when it finds nobody online."""
        routing = self.settings.routing
        if self.settings.operator_bot is None and (routing.business_hours is not None or routing.offline_message):
            self.bus.subscribe(MessageReceived, self._on_message)

    async def _on_message(self, event: MessageReceived) -> None:
        thread, contact = event.thread, event.contact
        if not contact.blocked and thread.operator_id is None and thread.open:
            await self.tell(thread, contact, event.message.created_at)

    async def tell(self, thread: Thread, contact: Contact, now: datetime) -> bool:
        """Tell the customer, once per conversation, that nobody is online and when to expect an answer; False
        when nothing is configured to say (or it was said already)."""
        content = self.notice(thread, contact, now)
        if content is None or not await self.store.threads.flag_busy_notice(thread.id):
            return False
        logger.info("nobody online for #%d: the customer is told when to expect an answer", thread.number)
        await self.conversations.send(thread, Draft(content, author=Author.SYSTEM))
        return True

    def notice(self, thread: Thread, contact: Contact, now: datetime) -> Content | None:
        """What to tell this customer now that nobody is online; None when nothing is configured."""
        routing = self.settings.routing
        language = (contact.language or routing.default_language).split("-")[0].lower()
        if self.hours.is_open(now):
            text = _say(routing.offline_message, language, routing.default_language) or _say(
                routing.busy_message, language, routing.default_language
            )
        else:
            opening = self.hours.next_opening(now)
            text = _say(routing.away_message, language, routing.default_language)
            text = text.replace("{opens}", describe_opening(opening, now, language) if opening else "")
        if not text:
            return None
        ask_email = thread.identity_ref.channel == "webwidget" and not contact.emails and not contact.unverified
        return Content(text=text, ask="email" if ask_email else None)


def _say(texts: dict[str, str], language: str, default: str) -> str:
    return texts.get(language) or texts.get(default) or ""
