"""What the operator bot showed of an erased customer, deleted from Telegram as far as Telegram lets a bot."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from aiogram.methods import DeleteForumTopic, DeleteMessages

from gateway.model import utcnow
from gateway.privacy import Erased
from gateway.storage.erasures import Leftover
from operators.relay import Relay

# A bot may delete its messages only while they are younger than 48 hours; a margin for the clocks.
DELETABLE_FOR = timedelta(hours=48) - timedelta(minutes=5)
# deleteMessages takes at most this many message ids.
CHUNK = 100


class TelegramCopies:
    """An eraser (gateway.privacy): deletes the forum topics and the operators' copies of erased conversations."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def erase(self, erased: Erased) -> list[Leftover]:
        """Delete what can be deleted; say what is left."""
        if self.relay.bot is None:
            count = len(erased.copies)
            return [Leftover("operator_chats", "The operator bot is not running.", count)] if count else []
        leftovers: list[Leftover] = []
        # A topic goes with everything in it, however old.
        kept_topics = [
            (chat_id, topic_id)
            for chat_id, topic_id in erased.topics
            if not await self.relay.send(
                chat_id, None, None, DeleteForumTopic(chat_id=chat_id, message_thread_id=topic_id)
            )
        ]
        if kept_topics:
            leftovers.append(Leftover("forum_mirror", "Telegram refused to delete the topics.", len(kept_topics)))
        gone = {chat_id for chat_id, _ in erased.topics} - {chat_id for chat_id, _ in kept_topics}
        since = utcnow() - DELETABLE_FOR
        young: dict[int, list[int]] = defaultdict(list)
        old = refused = 0
        for copy in erased.copies:
            if copy.chat_id in gone:
                continue
            if copy.at is not None and copy.at >= since:
                young[copy.chat_id].append(copy.message_id)
            else:
                old += 1
        for chat_id, message_ids in young.items():
            ids = sorted(set(message_ids))
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                if not await self.relay.send(chat_id, None, None, DeleteMessages(chat_id=chat_id, message_ids=chunk)):
                    refused += len(chunk)
        if old:
            detail = "Telegram lets a bot delete only messages younger than 48 hours."
            leftovers.append(Leftover("operator_chats", detail, old))
        if refused:
            leftovers.append(Leftover("operator_chats", "Telegram refused to delete them.", refused))
        return leftovers
