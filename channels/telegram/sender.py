"""Calling the Bot API: in order per chat, sitting out flood control, every failure as a SendError."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import AiogramError, TelegramAPIError, TelegramRetryAfter
from aiogram.methods.base import TelegramMethod

from channels.base import SendError
from channels.telegram.errors import send_error
from channels.telegram.pacing import Pace

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ChatLocks:
    """Serialises work per key; a lock exists only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for every earlier holder of `key`, then hold it for the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Sender:
    """Makes Bot API calls for any number of bots, one chat at a time, waiting out 429s within a budget."""

    def __init__(self) -> None:
        self._chats = ChatLocks()
        self._paces: dict[Any, Pace] = {}

    def pace(self, chat_id: Any, per_minute: int) -> None:
        """Space every call into this chat (a group's flood limit), whichever bot makes it."""
        self._paces[chat_id] = Pace(per_minute)

    def hold(self, bot: Bot, chat_id: Any) -> contextlib.AbstractAsyncContextManager[None]:
        """Keep a chat's calls in order: a call waiting out flood control is not overtaken in its chat."""
        return self._chats.hold((bot.id, chat_id))

    async def call(
        self,
        bot: Bot,
        method: TelegramMethod[T],
        *,
        deadline: float,
        who: str,
        on_wait: Callable[[float, str], Awaitable[None]] | None = None,
    ) -> T:
        """Make one call, sleeping through flood-control waits that end before `deadline` (loop time).

        `who` names the bot in error messages; `on_wait` hears of each wait (seconds, why) before it starts.
        Raises SendError for every failure.
        """
        loop = asyncio.get_running_loop()
        pace = self._paces.get(getattr(method, "chat_id", None))
        while True:
            if pace is not None:
                await pace.wait()
            try:
                return await bot(method)
            except TelegramRetryAfter as err:
                if loop.time() + err.retry_after > deadline:
                    raise send_error(err, who) from None
                logger.info("bot %s: flood control, waiting %d s", who, err.retry_after)
                if on_wait is not None:
                    await on_wait(float(err.retry_after), send_error(err, who).reason)
                await asyncio.sleep(err.retry_after)
            except TelegramAPIError as err:
                raise send_error(err, who) from None
            except AiogramError as err:  # e.g. a proxy answering with HTML instead of JSON
                raise SendError(
                    f"Telegram's answer could not be read ({type(err).__name__})", code="unavailable"
                ) from None
