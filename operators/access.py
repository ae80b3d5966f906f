"""Who may use the operator bot: configured operators; everyone else gets one polite refusal."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.filters import Filter
from aiogram.types import TelegramObject, User
from pymongo.errors import DuplicateKeyError

from gateway.config import OperatorBotSettings
from gateway.model import Operator, utcnow
from gateway.storage.mongo import Storage
from operators.texts import language, t

logger = logging.getLogger(__name__)


class OperatorsOnly(BaseMiddleware):
    """Passes updates from operators on, with `operator` and `lang` in the handler data."""

    def __init__(self, store: Storage, settings: OperatorBotSettings) -> None:
        self.store = store
        self.settings = settings

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            return None
        operator = await self.store.operators.get(user.id)
        if operator is None or not operator.active:
            chat = data.get("event_chat")
            if chat is not None and chat.type == "private":
                await self._refuse_once(data["bot"], user)
            return None
        if user.language_code and user.language_code != operator.language:
            operator = await self.store.operators.update(operator.id, {"language": user.language_code}) or operator
        data["operator"] = operator
        data["lang"] = language(operator.language, self.settings.default_language)
        return await handler(event, data)

    async def _refuse_once(self, bot: Bot, user: User) -> None:
        try:
            await self.store.db["bot_refusals"].insert_one({"_id": user.id, "at": utcnow()})
        except DuplicateKeyError:
            return
        logger.info("refused operator bot access to Telegram user %s", user.id)
        lang = language(user.language_code, self.settings.default_language)
        await bot.send_message(user.id, t(lang, "access.refused"))


class SupervisorOnly(Filter):
    """Matches only when the operator is a supervisor."""

    async def __call__(self, event: TelegramObject, operator: Operator) -> bool:
        return operator.is_supervisor
