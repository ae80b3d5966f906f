"""Customer messages no process showed to their operator or in the forum mirror (it stopped between storing one
and showing it) are shown late, once: a sweep one process runs, a little behind the present, over what was stored."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bson import ObjectId

from gateway.leases import Leases
from gateway.logs import log_context
from gateway.model import Message, Thread, utcnow
from gateway.rounds import in_rounds
from gateway.storage.mongo import Storage
from operators.mirror import Mirror
from operators.relay import Relay

logger = logging.getLogger(__name__)

LEASE = "relay-sweep"
# On the very first sweep of a database, how far back to look.
FIRST_LOOK_BACK = timedelta(hours=1)
EVERY_SECONDS = 5.0
# A message its (running) process has not relayed in this long is not going to be: the sweep relays it.
GIVE_UP = timedelta(minutes=30)
BATCH = 200


class RelaySweep:
    """Finds stored customer messages without a copy in their operator's chat (or the forum topic) and shows them."""

    def __init__(
        self, store: Storage, relay: Relay, leases: Leases, lag: timedelta, mirror: Mirror | None = None
    ) -> None:
        """`lag`: how far behind the present to sweep; longer than a relay can take, so one in flight is not
        repeated. With `mirror`, the supervisors' forum topics are swept too."""
        self.store = store
        self.relay = relay
        self.leases = leases
        self.lag = lag
        self.mirror = mirror

    async def run(self) -> None:
        """Sweep every few seconds (run it under the lease, so that one process does)."""

        async def one_round() -> bool:
            return await self.sweep() == BATCH

        await in_rounds(one_round, EVERY_SECONDS, "relay sweep")

    async def sweep(self, now: datetime | None = None) -> int:
        """Look at one batch of messages stored since the last sweep and up to `lag` ago; returns how many it
        went past (a whole batch: there may be more).

        A message whose process still runs is that process's to relay (its queue to one operator may be long):
        the sweep stops before it and looks again next time, unless it is older than GIVE_UP.
        """
        now = now or utcnow()
        before = ObjectId.from_datetime(now - self.lag)
        after = await self.store.leases.progress(LEASE) or ObjectId.from_datetime(
            before.generation_time - FIRST_LOOK_BACK
        )
        messages = await self.store.messages.inbound_between(after, before, BATCH)
        done = messages[-1].id if len(messages) == BATCH else before
        passed = len(messages)
        if messages:
            shown = await self.store.relay.shown([m.id for m in messages])
            threads = await self.store.threads.many(list({m.thread_id for m in messages}))
            missing: list[tuple[Message, Thread, int, str]] = []  # (message, thread, chat, showing key)
            for message in messages:
                thread = threads.get(message.thread_id)
                # A closed thread is over; an unassigned one is shown with its backlog when assigned.
                if thread is None or not thread.open:
                    continue
                if thread.operator_id is not None and (thread.operator_id, message.id) not in shown:
                    missing.append((message, thread, thread.operator_id, str(message.id)))
                chat, topic = thread.topic_chat_id, thread.topic_id
                if (
                    self.mirror is not None
                    and chat is not None
                    and topic is not None
                    and (chat, message.id) not in shown
                ):
                    missing.append((message, thread, chat, f"{topic}:{message.id}"))
            # Who reserved showing each one (a process may be showing it right now); else who stored it.
            holders = await self.store.relay.holders([(chat, key) for _, _, chat, key in missing])
            owners = {(chat, key): holders.get((chat, key), m.stored_by) for m, _, chat, key in missing}
            alive = await self.leases.alive({owner for owner in owners.values() if owner})
            for message, thread, chat, key in missing:
                if owners[chat, key] in alive and message.id.generation_time > now - GIVE_UP:
                    done = ObjectId.from_datetime(message.id.generation_time - timedelta(seconds=1))
                    passed = messages.index(message)
                    break
                if chat == thread.topic_chat_id and self.mirror is not None:
                    self.mirror.catch_up(thread, message, holders.get((chat, key)))
                else:
                    await self._relay(chat, message.id, holders.get((chat, key)))
        await self.store.leases.record_progress(LEASE, self.leases.holder, max(done, after))
        return passed

    async def _relay(self, operator_id: int, message_id: ObjectId, reserved_by: str | None) -> None:
        # Read again: it may have been moved (a merge) or relayed meanwhile.
        message = await self.store.messages.get(message_id)
        thread = await self.store.threads.get(message.thread_id) if message else None
        operator = await self.store.operators.get_brief(operator_id)
        if message is None or thread is None or operator is None or thread.operator_id != operator_id:
            return
        contact = await self.store.contacts.get(thread.contact_id)
        if contact is None or contact.blocked:
            return
        with log_context(thread=thread.number, channel=thread.channel):
            logger.info("message %s was never shown to operator %s: showing it now", message.id, operator_id)
            await self.relay.show_once(operator_id, self.relay.lang(operator), thread, message, take_over=reserved_by)
