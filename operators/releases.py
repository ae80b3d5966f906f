"""The operator who lost a chat is told, once: moved to someone else by a transfer or a supervisor, or handed
back to the queue because they went offline or stayed away past the grace period."""

from __future__ import annotations

from aiogram.methods import SendMessage

from gateway.events import EventBus, ThreadAssigned
from gateway.model import utcnow
from gateway.storage.mongo import Storage
from operators.relay import Relay
from operators.texts import t

# How each release is explained to the operator who lost the chat.
_WHY = {
    "offline": "lost.offline",
    "away_too_long": "lost.away_too_long",
    "offline_too_long": "lost.offline_too_long",
    "removed": "lost.removed",
}


class Releases:
    """Follows assignments and tells the previous operator what happened to their chat."""

    def __init__(self, store: Storage, relay: Relay) -> None:
        self.store = store
        self.relay = relay

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ThreadAssigned, self._on_assigned)

    async def _on_assigned(self, event: ThreadAssigned) -> None:
        previous, thread = event.previous_operator_id, event.thread
        if previous is None or previous == event.operator_id:
            return
        if event.reason not in ("transfer", "assign", "released"):
            return
        operator = await self.store.operators.get(previous)
        if operator is None:
            return
        # One move, one notice, whichever process (or repeated event) gets here: keyed by the assignment the
        # move ended or began (a requeue keeps assigned_at, a claim sets a new one).
        at = thread.assigned_at.isoformat() if thread.assigned_at else "-"
        key = f"lost:{thread.id}:{event.reason}:{at}"
        if not await self.store.relay.reserve(operator.id, key, thread.id, self.relay.holder, utcnow()):
            return
        lang = self.relay.lang(operator)
        if event.reason == "released":
            minutes = round(self.relay.settings.routing.offline_grace_seconds / 60)
            text = t(lang, _WHY.get(event.why or "", "lost.queue"), number=thread.number, minutes=minutes)
        else:
            new = await self.store.operators.get(event.operator_id) if event.operator_id else None
            target = new.name if new else (thread.group or t(lang, "lost.the_queue"))
            by = await self.store.operators.get(event.by) if event.by and event.by != previous else None
            text = (
                t(lang, "lost.moved_by", number=thread.number, target=target, who=by.name)
                if by
                else t(lang, "moved.away", number=thread.number, target=target)
            )
        await self.relay.send(operator.id, thread, None, SendMessage(chat_id=operator.id, text=text))
