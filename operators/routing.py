"""Who gets a conversation: an online operator below capacity, least busy first; otherwise the queue."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.config import Settings
from gateway.events import (
    ContactsUnmerged,
    EventBus,
    MessageReceived,
    OperatorStatusChanged,
    ThreadAssigned,
    ThreadClosed,
)
from gateway.inbox import Draft, Inbox
from gateway.logs import log_context
from gateway.model import Author, Contact, Content, Operator, OperatorStatus, Thread, utcnow
from gateway.storage.mongo import Store

logger = logging.getLogger(__name__)

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """The result of a transfer or an explicit assignment: the thread, or why not."""

    thread: Thread | None
    error: str | None = None


class Router:
    """Assigns threads with guarded atomic updates, so no thread is assigned twice and nobody exceeds capacity."""

    def __init__(self, store: Store, bus: EventBus, inbox: Inbox, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.inbox = inbox
        self.settings = settings

    def subscribe(self) -> None:
        """Route new messages, drain the queue when capacity appears, release operators who leave."""
        self.bus.subscribe(MessageReceived, self._on_message)
        self.bus.subscribe(OperatorStatusChanged, self._on_status)
        self.bus.subscribe(ThreadClosed, self._on_closed)
        self.bus.subscribe(ContactsUnmerged, self._on_unmerged)

    async def assign(
        self,
        thread: Thread,
        *,
        prefer: int | None = None,
        reason: str = "new",
        comment: str | None = None,
        by: int | None = None,
    ) -> Operator | None:
        """Give an unassigned thread to the best online operator with room; None when nobody qualifies."""
        now = utcnow()
        for operator in await self._candidates(thread, prefer):
            if not await self.store.operators.claim_slot(operator.id, thread.id, self._capacity(operator), now):
                continue  # went offline or filled up since we looked
            claimed = await self.store.threads.claim(thread.id, operator.id, now)
            if claimed is None:
                # Someone else assigned the thread (or it closed) in the meantime.
                await self.store.operators.release_slot(operator.id, thread.id)
                return None
            with log_context(thread=claimed.number, channel=claimed.channel):
                logger.info("assigned to operator %s (%s)", operator.id, reason)
            self.bus.publish(
                ThreadAssigned(thread=claimed, operator_id=operator.id, reason=reason, comment=comment, by=by)
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
        now = utcnow()
        for thread in await self.store.threads.queued():
            if thread.group and thread.group not in operator.groups:
                continue
            if not await self.store.operators.claim_slot(operator.id, thread.id, self._capacity(operator), now):
                return Outcome(None, "not_available")
            claimed = await self.store.threads.claim(thread.id, operator.id, now)
            if claimed is not None:
                self.bus.publish(ThreadAssigned(thread=claimed, operator_id=operator.id, reason="next"))
                return Outcome(claimed)
            await self.store.operators.release_slot(operator.id, thread.id)
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
        if to_operator is not None:
            if to_operator.id == previous:
                return Outcome(None, "same_operator")
            if not await self.store.operators.claim_slot(to_operator.id, thread.id, self._capacity(to_operator), now):
                return Outcome(None, "not_available")
            moved = await self.store.threads.claim(thread.id, to_operator.id, now, current=previous)
            if moved is None:
                await self.store.operators.release_slot(to_operator.id, thread.id)
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
            await self.inbox.note(moved, comment, author=Author.OPERATOR, author_id=by)
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
        """Hand an operator's open threads back to the queue (and on to others), with a note in each."""
        for thread_id in operator.chats:
            thread = await self.store.threads.requeue(thread_id, operator.id)
            await self.store.operators.release_slot(operator.id, thread_id)
            if thread is None:
                continue
            note = f"{operator.name} {why}; the conversation went back to the queue."
            await self.store.threads.add_transfer(
                thread_id,
                {
                    "from_operator": operator.id,
                    "to_operator": None,
                    "to_group": None,
                    "comment": note,
                    "by": None,
                    "at": utcnow(),
                },
            )
            await self.inbox.note(thread, note)
            self.bus.publish(
                ThreadAssigned(thread=thread, operator_id=None, previous_operator_id=operator.id, reason="released")
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
                await self.release(operator, f"has been {operator.status.value} too long")

    async def _on_message(self, event: MessageReceived) -> None:
        if event.contact.blocked or event.thread.operator_id is not None:
            return
        thread = await self.store.threads.get(event.thread.id)
        if thread is None or not thread.open or thread.operator_id is not None:
            return
        prefer = await self._previous_operator(thread) if event.opened else None
        operator = await self.assign(thread, prefer=prefer, reason="reopened" if prefer else "new")
        if operator is None:
            await self._busy_notice(thread, event.contact)

    async def _on_status(self, event: OperatorStatusChanged) -> None:
        if event.operator.status is OperatorStatus.ONLINE:
            await self.drain()
        elif event.operator.status is OperatorStatus.OFFLINE:
            operator = await self.store.operators.get(event.operator.id)
            if operator is not None and operator.status is OperatorStatus.OFFLINE:
                await self.release(operator, "went offline")

    async def _on_closed(self, event: ThreadClosed) -> None:
        if event.thread.operator_id is not None:
            await self.store.operators.release_slot(event.thread.operator_id, event.thread.id)
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
        """Tell the customer once per thread that everyone is busy."""
        if not await self.store.threads.flag_busy_notice(thread.id):
            return
        routing = self.settings.routing
        language = (contact.language or routing.default_language).split("-")[0].lower()
        text = routing.busy_message.get(language) or routing.busy_message.get(routing.default_language)
        if text:
            await self.inbox.send(thread, Draft(Content(text=text), author=Author.SYSTEM))

    def _capacity(self, operator: Operator) -> int:
        return operator.capacity(self.settings.routing.max_chats_per_operator)
