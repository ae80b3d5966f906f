"""Who gets a conversation: an online operator below capacity, least busy first; otherwise the queue."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from bson import ObjectId

from gateway.config import Settings
from gateway.conversations import Conversations, Draft
from gateway.events import (
    ContactsMerged,
    ContactsUnmerged,
    EventBus,
    MessageReceived,
    OperatorStatusChanged,
    ThreadAssigned,
    ThreadClosed,
)
from gateway.hours import AwayNotice
from gateway.logs import log_context
from gateway.model import Author, Contact, Content, Notice, Operator, OperatorStatus, Thread, utcnow
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """The result of a transfer or an explicit assignment: the thread, or why not."""

    thread: Thread | None
    error: str | None = None


class Refusal(Enum):
    """Why `claim` gave nobody the thread."""

    NO_ROOM = "no_room"  # the operator is not online, or is at capacity
    CHANGED = "changed"  # the thread was assigned, moved or closed meanwhile


class Routing:
    """Assigns threads with guarded atomic updates, so no thread is assigned twice and nobody exceeds capacity."""

    def __init__(self, store: Storage, bus: EventBus, conversations: Conversations, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.conversations = conversations
        self.settings = settings
        self.away = AwayNotice(store, bus, conversations, settings)

    def subscribe(self) -> None:
        """Route new messages, drain the queue when capacity appears, release operators who leave."""
        self.bus.subscribe(MessageReceived, self._on_message)
        self.bus.subscribe(OperatorStatusChanged, self._on_status)
        self.bus.subscribe(ThreadClosed, self._on_closed)
        self.bus.subscribe(ContactsMerged, self._on_merged)
        self.bus.subscribe(ContactsUnmerged, self._on_unmerged)

    async def claim(self, operator: Operator, thread_id: ObjectId, *, current: int | None = None) -> Thread | Refusal:
        """Give a thread to an operator: the one assignment primitive, two guarded atomic updates.

        A slot is taken only while the operator is online and below capacity; the thread only while its
        operator is still `current` (None: unassigned). When the thread changed meanwhile, the slot is freed.
        """
        now = utcnow()
        if not await self.store.operators.claim_slot(operator.id, thread_id, self._capacity(operator), now):
            return Refusal.NO_ROOM
        claimed = await self.store.threads.claim(thread_id, operator.id, now, current=current)
        if claimed is None:
            await self.store.operators.release_slot(operator.id, thread_id)
            return Refusal.CHANGED
        return claimed

    async def assign(
        self,
        thread: Thread,
        *,
        prefer: int | None = None,
        reason: str = "new",
        comment: str | None = None,
        by: int | None = None,
        contact: Contact | None = None,
    ) -> Operator | None:
        """Give an unassigned thread to the best online operator with room; None when nobody qualifies.
        `contact`: the thread's card, when the caller has it at hand."""
        for operator in await self._candidates(thread, prefer):
            claimed = await self.claim(operator, thread.id)
            if claimed is Refusal.NO_ROOM:
                continue  # went offline or filled up since we looked
            if claimed is Refusal.CHANGED:
                return None  # someone else assigned the thread (or it closed) in the meantime
            with log_context(thread=claimed.number, channel=claimed.channel):
                logger.info("assigned to operator %s (%s)", operator.id, reason)
            self.bus.publish(
                ThreadAssigned(
                    thread=claimed,
                    operator_id=operator.id,
                    reason=reason,
                    comment=comment,
                    by=by,
                    operator=operator,
                    contact=contact,
                )
            )
            return operator
        return None

    async def drain(self) -> int:
        """Assign waiting threads, longest wait first, while someone can take them."""
        assigned = 0
        for thread in await self.store.threads.queued():
            if await self.assign(thread, reason="queue") is not None:
                assigned += 1
        return assigned

    async def take_next(self, operator: Operator) -> Outcome:
        """The operator takes the longest-waiting thread they may handle (/next)."""
        for thread in await self.store.threads.queued():
            if thread.group and thread.group not in operator.groups:
                continue
            claimed = await self.claim(operator, thread.id)
            if claimed is Refusal.NO_ROOM:
                return Outcome(None, "not_available")
            if claimed is not Refusal.CHANGED:
                self.bus.publish(ThreadAssigned(thread=claimed, operator_id=operator.id, reason="next"))
                return Outcome(claimed)
        return Outcome(None, "queue_empty")

    async def transfer(
        self,
        thread: Thread,
        *,
        to_operator: Operator | None = None,
        to_group: str | None = None,
        comment: str | None = None,
        by: int | None = None,
        reason: str = "transfer",
    ) -> Outcome:
        """Move a thread to another operator (who must be online with room) or to a group."""
        if not thread.open:
            return Outcome(None, "closed")
        previous = thread.operator_id
        now = utcnow()
        moved: Thread | Refusal | None
        if to_operator is not None:
            if to_operator.id == previous:
                return Outcome(None, "same_operator")
            moved = await self.claim(to_operator, thread.id, current=previous)
            if moved is Refusal.NO_ROOM:
                return Outcome(None, "not_available")
            if moved is Refusal.CHANGED:
                return Outcome(None, "changed")
        else:
            moved = await self.store.threads.requeue(thread.id, previous, group=to_group)
            if moved is None:
                return Outcome(None, "changed")
        if previous is not None:
            await self.store.operators.release_slot(previous, thread.id)
        await self.store.threads.add_transfer(
            thread.id,
            {
                "from_operator": previous,
                "to_operator": to_operator.id if to_operator else None,
                "to_group": to_group,
                "comment": comment,
                "by": by,
                "at": now,
            },
        )
        if comment:
            await self.conversations.note(moved, comment, author=Author.OPERATOR, author_id=by)
        self.bus.publish(
            ThreadAssigned(
                thread=moved,
                operator_id=to_operator.id if to_operator else None,
                previous_operator_id=previous,
                reason=reason,
                comment=comment,
                by=by,
            )
        )
        if to_operator is None:
            # The group's operator gets the card with the comment, like a direct transfer.
            await self.assign(moved, reason=reason, comment=comment, by=by)
        if previous is not None:
            await self.drain()
        return Outcome(await self.store.threads.get(thread.id))

    async def release(self, operator: Operator, why: str) -> None:
        """Hand an operator's open threads back to the queue (and on to others), with a note in each.

        `why` is offline, away_too_long, offline_too_long or removed.
        """
        for thread_id in operator.chats:
            thread = await self.store.threads.requeue(thread_id, operator.id)
            await self.store.operators.release_slot(operator.id, thread_id)
            if thread is None:
                continue
            await self.store.threads.add_transfer(
                thread_id,
                {
                    "from_operator": operator.id,
                    "to_operator": None,
                    "to_group": None,
                    "comment": None,
                    "by": None,
                    "at": utcnow(),
                },
            )
            await self.conversations.note(thread, notice=Notice(f"released.{why}", {"operator": operator.name}))
            self.bus.publish(
                ThreadAssigned(
                    thread=thread, operator_id=None, previous_operator_id=operator.id, reason="released", why=why
                )
            )
        await self.drain()

    async def run(self) -> None:
        """Release operators who stayed away past the grace period; drain the queue as a safety net."""
        grace = self.settings.routing.offline_grace_seconds
        while True:
            await asyncio.sleep(max(1.0, min(grace / 4, 30.0)))
            try:
                await self.release_lapsed()
                await self.drain()
            except Exception:  # the next round tries again
                logger.exception("routing round failed")

    async def release_lapsed(self) -> None:
        """Release the threads of operators away (or offline) for longer than the grace period."""
        cutoff = utcnow() - timedelta(seconds=self.settings.routing.offline_grace_seconds)
        for operator in await self.store.operators.all():
            lapsed = operator.status is not OperatorStatus.ONLINE and (operator.status_since or _NEVER) <= cutoff
            if lapsed and operator.chats:
                await self.release(operator, f"{operator.status.value}_too_long")

    async def _on_message(self, event: MessageReceived) -> None:
        if event.contact.blocked or event.thread.operator_id is not None:
            return
        # A thread opened by this very message is as the event has it; an older one may have been taken meanwhile.
        thread = event.thread if event.opened else await self.store.threads.get(event.thread.id)
        if thread is None or not thread.open or thread.operator_id is not None:
            return
        prefer = await self._previous_operator(thread) if event.opened else None
        operator = await self.assign(
            thread, prefer=prefer, reason="reopened" if prefer else "new", contact=event.contact
        )
        if operator is None:
            await self._busy_notice(thread, event.contact)

    async def _on_status(self, event: OperatorStatusChanged) -> None:
        if event.operator.status is OperatorStatus.ONLINE:
            await self.drain()
        elif event.operator.status is OperatorStatus.OFFLINE:
            operator = await self.store.operators.get(event.operator.id)
            if operator is not None and operator.status is OperatorStatus.OFFLINE:
                await self.release(operator, "offline")

    async def _on_closed(self, event: ThreadClosed) -> None:
        if event.thread.operator_id is not None:
            await self.store.operators.release_slot(event.thread.operator_id, event.thread.id)
            if event.thread.joined_into is None:  # a joined thread's merge decides who keeps the conversation
                await self.drain()

    async def _on_merged(self, event: ContactsMerged) -> None:
        """A joined conversation stays with an operator: the kept thread's, else the joined thread's."""
        closed = event.closed_thread
        if closed is not None and closed.operator_id is not None:
            await self.store.operators.release_slot(closed.operator_id, closed.id)
        kept = await self.store.threads.get(event.kept_thread.id) if event.kept_thread else None
        if kept is not None and kept.open and kept.operator_id is None and closed and closed.operator_id is not None:
            # They were already talking to this customer: they keep the conversation, whatever its group.
            operator = await self.store.operators.get(closed.operator_id)
            claimed = await self.claim(operator, kept.id) if operator is not None else Refusal.NO_ROOM
            if not isinstance(claimed, Refusal):
                self.bus.publish(ThreadAssigned(thread=claimed, operator_id=closed.operator_id, reason="merged"))
        await self.drain()

    async def _on_unmerged(self, event: ContactsUnmerged) -> None:
        """A split can leave a reopened or new thread waiting: route it now, not at the next round."""
        for snapshot in (event.contact_thread, event.restored_thread):
            thread = await self.store.threads.get(snapshot.id) if snapshot else None
            if thread is not None and thread.open and thread.operator_id is None:
                await self.assign(thread, reason="unmerged")

    async def _candidates(self, thread: Thread, prefer: int | None) -> list[Operator]:
        """Online operators of the thread's group with room: the preferred one, then least busy, then
        the one who waited longest since their last assignment."""
        free = [o for o in await self.store.operators.online(thread.group) if len(o.chats) < self._capacity(o)]
        free.sort(key=lambda o: (o.id != prefer, len(o.chats), o.last_assigned_at or _NEVER))
        return free

    async def _previous_operator(self, thread: Thread) -> int | None:
        if thread.previous_thread_id is None:
            return None
        previous = await self.store.threads.get(thread.previous_thread_id)
        return previous.operator_id if previous else None

    async def _busy_notice(self, thread: Thread, contact: Contact) -> None:
        """Tell the customer once per thread that everyone is busy, or (nobody online) when to expect an answer."""
        if not await self.store.operators.online(thread.group):
            await self.away.tell(thread, contact, utcnow())
            return
        if not await self.store.threads.flag_busy_notice(thread.id):
            return
        routing = self.settings.routing
        language = (contact.language or routing.default_language).split("-")[0].lower()
        text = routing.busy_message.get(language) or routing.busy_message.get(routing.default_language)
        if text:
            await self.conversations.send(thread, Draft(Content(text=text), author=Author.SYSTEM))

    def _capacity(self, operator: Operator) -> int:
        return operator.capacity(self.settings.routing.max_chats_per_operator)
