"""Texts too long for one Telegram message sent as several, instead of having them refused: whatever a bot
answers arrives whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import SendMessage
from aiogram.methods.base import Response, TelegramMethod, TelegramType

from channels.telegram.limits import TEXT_LIMIT, fits, split_text

if TYPE_CHECKING:
    from aiogram import Bot


def split_message(method: SendMessage) -> list[SendMessage]:
    """sendMessage as one call per part of at most 4,096 UTF-16 code units: the reply on the first part, the
    buttons under the last; a text that fits (or holds nothing but whitespace, Telegram's to refuse) as it is."""
    parts = [] if fits(method.text, TEXT_LIMIT) else split_text(method.text)
    if not parts:
        return [method]
    last = len(parts) - 1
    return [
        method.model_copy(
            update={
                "text": part,
                "reply_markup": method.reply_markup if i == last else None,
                "reply_parameters": method.reply_parameters if i == 0 else None,
            }
        )
        for i, part in enumerate(parts)
    ]


class SplitLongTexts(BaseRequestMiddleware):
    """A bot session middleware: a text too long for one message goes as several (split_message); the answer to
    the last part is returned."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if not isinstance(method, SendMessage):
            return await make_request(bot, method)
        response: Response[Any] | None = None
        for piece in split_message(method):
            response = await make_request(bot, cast(TelegramMethod[TelegramType], piece))
        assert response is not None
        return response
