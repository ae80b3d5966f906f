"""Downloading a file a bot received: getFile, then the file itself, streamed and capped at 20 MB."""

from __future__ import annotations

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest

from channels.base import SendError
from channels.telegram.limits import DOWNLOAD_LIMIT, too_large_download

DOWNLOAD_TIMEOUT = 60


async def download(bot: Bot, file_id: str, size: int | None = None) -> bytes:
    """The bytes of a file this bot can see; SendError with a reason an operator can act on otherwise."""
    if size and size > DOWNLOAD_LIMIT:
        raise too_large_download(size)
    try:
        file = await bot.get_file(file_id)
    except TelegramBadRequest as err:
        if "too big" in err.message:
            raise too_large_download(size) from None
        raise SendError(
            f"Telegram cannot provide the file: {err.message}", code="bad_request", permanent=True
        ) from None
    except TelegramAPIError as err:
        raise SendError(
            f"could not get the file from Telegram: {err.message}",
            code="unavailable",
            retry_after=getattr(err, "retry_after", None),
        ) from None
    if file.file_size and file.file_size > DOWNLOAD_LIMIT:
        raise too_large_download(file.file_size)
    if not file.file_path:
        raise SendError("Telegram gave no download path for the file", code="unavailable")
    url = bot.session.api.file_url(bot.token, file.file_path)
    data = bytearray()
    try:
        async for chunk in bot.session.stream_content(url, timeout=DOWNLOAD_TIMEOUT, raise_for_status=True):
            data += chunk
            if len(data) > DOWNLOAD_LIMIT:
                raise too_large_download(None)
    except aiohttp.ClientResponseError as err:
        # Never put the error's own text anywhere: it contains the URL, and so the bot's token.
        raise SendError(
            f"Telegram answered HTTP {err.status} for the file",
            code="unavailable",
            permanent=err.status in (400, 401, 403, 404),
        ) from None
    except (aiohttp.ClientError, TimeoutError) as err:
        raise SendError(
            f"could not download the file from Telegram ({type(err).__name__})", code="unavailable"
        ) from None
    return bytes(data)
