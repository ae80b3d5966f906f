"""The in-process event bus the hub publishes to; events of one thread are handled in order."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.logs import log_context
from gateway.model import Contact, Message, Operator, OperatorStatus, Thread
from gateway.storage.duplicates import Duplicate
from gateway.storage.merges import MergeRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of all events; `key` orders events (one thread's events run one after another)."""

    @property
    def key(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class ThreadEvent(Event):
    thread: Thread

    @property
    def key(self) -> str:
        return f"thread:{self.thread.id}"


@dataclass(frozen=True)
class MessageReceived(ThreadEvent):
    """A customer message was stored; `opened` says it started a new thread."""

    message: Message
    contact: Contact
    opened: bool


@dataclass(frozen=True)
class MessageEdited(ThreadEvent):
    """A customer edited a message we already stored."""

    message: Message
    contact: Contact


@dataclass(frozen=True)
class MessageStored(ThreadEvent):
    """An outbound or internal message (a reply, a system message, a note) was stored."""

    message: Message


@dataclass(frozen=True)
class MessageStatusChanged(ThreadEvent):
    """An outbound message was sent, delivered, read or failed."""

    message: Message


@dataclass(frozen=True)
class MessageWaiting(ThreadEvent):
    """The send of an outbound message is held up for about `seconds` (a platform's flood control)."""

    message: Message
    seconds: float
    reason: str


@dataclass(frozen=True)
class ThreadClosed(ThreadEvent):
    """A thread was closed; `by` is the operator who closed it, if any."""

    by: int | None


@dataclass(frozen=True)
class ThreadErased(ThreadClosed):
    """An open thread was closed because its customer was erased; `thread` is what is left: its timings."""


@dataclass(frozen=True)
class ThreadAssigned(ThreadEvent):
    """A thread got an operator (or, with operator_id None, went back to the queue).

    `reason` is one of new, reopened, queue, next, transfer, assign, released; a release says `why`
    (offline, away_too_long, offline_too_long, removed).
    """

    operator_id: int | None
    previous_operator_id: int | None = None
    reason: str = "new"
    comment: str | None = None
    by: int | None = None
    # The operator and the customer's card as routing had them, when it had them (saves reading them again).
    operator: Operator | None = None
    contact: Contact | None = None
    why: str | None = None


@dataclass(frozen=True)
class OperatorStatusChanged(Event):
    """An operator went online, away or offline."""

    operator: Operator
    previous: OperatorStatus

    @property
    def key(self) -> str:
        return f"operator:{self.operator.id}"


@dataclass(frozen=True)
class VisitorActivity(Event):
    """A customer did something their operator may want to see, not kept as a message.

    `kind` is page (details url, title), identified (name, email, phone as typed), typing, left (the last
    window closed a while ago) or back.
    """

    contact: Contact
    kind: str
    details: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"contact:{self.contact.id}"


@dataclass(frozen=True)
class ContactChanged(Event):
    """A contact gained phone numbers or e-mail addresses."""

    contact: Contact
    new_phones: tuple[str, ...] = ()
    new_emails: tuple[str, ...] = ()
    phone_verified: bool = False

    @property
    def key(self) -> str:
        return f"contact:{self.contact.id}"


@dataclass(frozen=True)
class DuplicateFound(Event):
    """Two live cards share a phone or e-mail: offer the merge to whoever handles either conversation.

    `contact` is the card that just gained the phone or e-mail; each thread is the card's open
    conversation, or its latest one ("last conversation"), or None.
    """

    duplicate: Duplicate
    contact: Contact
    other: Contact
    contact_thread: Thread | None
    other_thread: Thread | None

    @property
    def key(self) -> str:
        return f"duplicate:{self.duplicate.id}"


@dataclass(frozen=True)
class ContactsMerged(Event):
    """Two cards became one (`contact`, the kept card, as it is now).

    When both had an open conversation, `closed_thread` was joined into `kept_thread` (its messages
    moved there); its `operator_id` is who handled it. Routing decides who keeps the conversation.
    """

    merge: MergeRecord
    contact: Contact
    kept_thread: Thread | None
    closed_thread: Thread | None

    @property
    def key(self) -> str:
        return f"contact:{self.merge.kept_id}"


@dataclass(frozen=True)
class ContactsUnmerged(Event):
    """A merge was undone: `restored` is the merged-away card again, `contact` the card it was merged into.

    Each thread is that card's open conversation after the split (None when it has none); a
    reopened or new one waits in the queue without an operator.
    """

    merge: MergeRecord
    contact: Contact
    restored: Contact
    contact_thread: Thread | None
    restored_thread: Thread | None
    by: int | None

    @property
    def key(self) -> str:
        return f"contact:{self.merge.kept_id}"


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None]]


class EventBus:
    """Delivers events to subscribers in the background, in order per event key."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = defaultdict(list)
        self._queues: dict[str, deque[Event]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Call `handler` for every event of this type (and its subclasses)."""
        self._handlers[event_type].append(handler)

    def publish(self, event: Event) -> None:
        """Queue an event; it is handled after earlier events with the same key."""
        queue = self._queues.get(event.key)
        if queue is not None:
            queue.append(event)
            return
        self._queues[event.key] = deque([event])
        worker = asyncio.create_task(self._drain_key(event.key))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def drain(self) -> None:
        """Wait until every queued event has been handled (tests and shutdown use this)."""
        while self._workers:
            await asyncio.gather(*list(self._workers), return_exceptions=True)

    async def close(self) -> None:
        """Finish queued work, then stop."""
        await self.drain()

    async def _drain_key(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._dispatch(queue[0])
                queue.popleft()
        finally:
            del self._queues[key]

    async def _dispatch(self, event: Event) -> None:
        context = {}
        if isinstance(event, ThreadEvent):
            context = {"thread": event.thread.number, "channel": event.thread.channel}
        with log_context(**context):
            for event_type, handlers in list(self._handlers.items()):
                if not isinstance(event, event_type):
                    continue
                for handler in handlers:
                    try:
                        await handler(event)
                    except Exception:  # one failing subscriber must not stop the others
                        name = getattr(handler, "__qualname__", handler)
                        logger.exception("%s failed on %s", name, type(event).__name__)
