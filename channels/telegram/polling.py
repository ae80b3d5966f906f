"""Long polling getUpdates: chats handled side by side (each in order); an update is confirmed (the offset moved
past it) only once it and every update before it were handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
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
            offset, failed = await handle_batch(updates, handle, offset, who=who)
            if not failed:
                failures = 0
                continue
            failures += 1
        except AiogramError as err:
            failures += 1
            logger.warning("bot %s: getUpdates failed (%s)", who, getattr(err, "message", type(err).__name__))
        await asyncio.sleep(min(2.0**failures, POLL_BACKOFF_MAX))


async def handle_batch(
    updates: Sequence[Update], handle: Callable[[Update], Awaitable[None]], offset: int | None, *, who: str
) -> tuple[int | None, bool]:
    """Handle one getUpdates batch, one task per chat; returns the offset to confirm and whether any update failed.

    A chat stops at its first failure, so its later updates wait behind it; the offset stops before the first
    failed update, so it (and whatever followed, handled or not: updates are idempotent) is fetched again.
    """
    chats: dict[int | None, list[Update]] = {}
    for update in updates:
        chats.setdefault(_chat_of(update), []).append(update)
    failed: list[int] = []

    async def run(chat: list[Update]) -> None:
        for update in chat:
            try:
                await handle(update)
            except Exception:
                logger.exception("bot %s: update %d could not be handled; it is fetched again", who, update.update_id)
                failed.append(update.update_id)
                return

    await asyncio.gather(*(run(chat) for chat in chats.values()))
    if failed:
        first = min(failed)
        done = [u.update_id for u in updates if u.update_id < first]
        return (max(done) + 1 if done else offset), True
    return (updates[-1].update_id + 1 if updates else offset), False


def _chat_of(update: Update) -> int | None:
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    if update.callback_query is not None:
        return update.callback_query.from_user.id
    return None
