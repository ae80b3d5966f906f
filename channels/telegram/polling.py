"""Long polling getUpdates: an update is confirmed (the offset moved past it) only once it was handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiogram import Bot
from aiogram.exceptions import AiogramError
from aiogram.types import Update

from channels.telegram.webhook import ALLOWED_UPDATES

logger = logging.getLogger(__name__)

POLL_TIMEOUT: Final = 25
POLL_BACKOFF_MAX: Final = 30.0


async def poll(bot: Bot, handle: Callable[[Update], Awaitable[None]], *, who: str) -> None:
    """Fetch and handle updates until cancelled; a failed update is fetched again after a backoff."""
    # getUpdates is refused while a webhook is set; pending updates are kept.
    await bot.delete_webhook(drop_pending_updates=False)
    offset: int | None = None
    failures = 0
    while True:
        try:
            updates = await bot.get_updates(
                offset=offset,
                timeout=POLL_TIMEOUT,
                allowed_updates=list(ALLOWED_UPDATES),
                request_timeout=POLL_TIMEOUT + 30,
            )
            for update in updates:
                await handle(update)
                offset = update.update_id + 1
            failures = 0
            continue
        except AiogramError as err:
            failures += 1
            logger.warning("bot %s: getUpdates failed (%s)", who, getattr(err, "message", type(err).__name__))
        except Exception:
            failures += 1
            logger.exception("bot %s: an update could not be handled; it is fetched again", who)
        await asyncio.sleep(min(2.0**failures, POLL_BACKOFF_MAX))
