"""Operators the bot cannot write to (they blocked it, or deleted the chat) get no more conversations."""

from __future__ import annotations

import logging

from aiogram.methods import SendMessage

from gateway.model import OperatorStatus
from gateway.storage.mongo import Storage
from operators.presence import Presence
from operators.relay import Relay
from operators.texts import t

logger = logging.getLogger(__name__)


class Reachability:
    """Sets an unreachable operator offline (routing then hands their conversations on) and tells supervisors."""

    def __init__(self, store: Storage, presence: Presence, relay: Relay) -> None:
        self.store = store
        self.presence = presence
        self.relay = relay

    async def unreachable(self, operator_id: int, reason: str) -> None:
        """Telegram refused to deliver into this operator's chat: they cannot see their conversations."""
        operator = await self.store.operators.get(operator_id)
        if operator is None or operator.status is OperatorStatus.OFFLINE:
            return
        logger.warning("operator %s cannot be reached (%s): set offline, conversations back to the queue",
                       operator_id, reason)  # fmt: skip
        await self.presence.set_status(operator_id, OperatorStatus.OFFLINE)
        for supervisor in await self.store.operators.all():
            if supervisor.is_supervisor and supervisor.id != operator_id:
                text = t(self.relay.lang(supervisor), "sup.unreachable", name=operator.name, reason=reason,
                         count=len(operator.chats))  # fmt: skip
                await self.relay.send(supervisor.id, None, None, SendMessage(chat_id=supervisor.id, text=text))
