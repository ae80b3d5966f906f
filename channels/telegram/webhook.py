"""Telegram's webhook calls: the secret checked before anything is read, then the body as an Update."""

from __future__ import annotations

import hmac
from typing import Final

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query")


def authentic(request: web.Request, secret: str) -> bool:
    """Whether the call carries the secret token we registered (compared in constant time)."""
    given = request.headers.get(SECRET_HEADER, "")
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


async def read_update(request: web.Request, bot: Bot) -> Update | None:
    """The body as a Telegram Update, or None when it is not one."""
    try:
        return Update.model_validate_json(await request.read(), context={"bot": bot})
    except ValidationError:
        return None
