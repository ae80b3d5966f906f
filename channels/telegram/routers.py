"""The customer bots' aiogram routers, one per concern; every accepted update ends in the host's on_inbound.

Handlers get `account` (the bot's configured name) from `feed_update` and `host` from the Dispatcher.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message

from channels.base import ChannelHost
from channels.telegram.filters import Magic
from channels.telegram.inbound import from_callback, from_message

logger = logging.getLogger(__name__)


def build_routers(accept_groups: bool) -> list[Router]:
    """The routers in the order they see an update: filters first, then customer messages and buttons."""
    return [chats_router(accept_groups), messages_router(), buttons_router()]


def chats_router(accept_groups: bool) -> Router:
    """Swallows what is not a customer talking to us: channel posts, group chats unless accepted, bots."""
    router = Router(name="telegram-chats")
    router.channel_post.register(_ignore_channel_post)
    router.edited_channel_post.register(_ignore_channel_post)
    if not accept_groups:
        router.message.register(_ignore_group, Magic(F.chat.type != ChatType.PRIVATE))
        router.edited_message.register(_ignore_group, Magic(F.chat.type != ChatType.PRIVATE))
    router.message.register(_ignore_anonymous, _anonymous)
    router.edited_message.register(_ignore_anonymous, _anonymous)
    return router


def messages_router() -> Router:
    """New and edited customer messages of every kind."""
    router = Router(name="telegram-messages")
    router.message.register(_on_message)
    router.edited_message.register(_on_message)
    return router


def buttons_router() -> Router:
    """Presses on inline buttons we sent."""
    router = Router(name="telegram-buttons")
    router.callback_query.register(_on_button)
    return router


async def _on_message(message: Message, account: str, host: ChannelHost) -> None:
    await host.on_inbound(from_message(message, account))


async def _on_button(query: CallbackQuery, account: str, host: ChannelHost) -> None:
    if query.data is not None:
        await host.on_inbound(from_callback(query, account))
    try:
        # Stops the spinner on the customer's button; a re-delivered press finds it already answered.
        await query.answer()
    except TelegramAPIError as err:
        logger.info("button press %s not acknowledged: %s", query.id, err.message)


async def _ignore_channel_post(message: Message, account: str) -> None:
    logger.info("bot %s: post in channel %s ignored", account, message.chat.id)


async def _ignore_group(message: Message, account: str) -> None:
    logger.info(
        "bot %s: message in %s chat %s ignored (telegram.accept_groups is off)",
        account,
        message.chat.type,
        message.chat.id,
    )


async def _anonymous(message: Message) -> bool:
    return message.from_user is None or message.from_user.is_bot


async def _ignore_anonymous(message: Message, account: str) -> None:
    logger.info(
        "bot %s: message %s without a user sender in chat %s ignored", account, message.message_id, message.chat.id
    )
