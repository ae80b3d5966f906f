"""What the Bot API's errors mean for the operator: a reason they can act on, and whether a retry helps."""

from __future__ import annotations

from typing import Final

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)

from channels.base import SendError

MB: Final = 1024 * 1024
DOWNLOAD_LIMIT: Final = 20 * MB
UPLOAD_LIMIT: Final = 50 * MB
_BLOCKED: Final = "bot was blocked by the user"


def send_error(err: TelegramAPIError, account: str) -> SendError:
    """The SendError for a Bot API failure while sending through bot `account`."""
    description = err.message
    if isinstance(err, TelegramRetryAfter):
        return SendError(
            f"Telegram asks us to wait {err.retry_after} s before writing to this chat again",
            code="rate_limited",
            retry_after=float(err.retry_after),
        )
    if isinstance(err, TelegramForbiddenError):
        detail = description.removeprefix("Forbidden: ")
        reason = "the customer blocked the bot" if _BLOCKED in detail else f"Telegram refused: {detail}"
        return SendError(reason, code="blocked", permanent=True, unreachable=True)
    if isinstance(err, TelegramEntityTooLarge):
        return too_large_upload()
    if isinstance(err, (TelegramBadRequest, TelegramMigrateToChat)):
        return SendError(description, code="bad_request", permanent=True)
    if isinstance(err, TelegramUnauthorizedError):
        return SendError(f"Telegram rejected the token of bot {account}", code="unavailable")
    # Network trouble, 5xx, a restarting server: worth another try later.
    return SendError(f"Telegram is unavailable: {description}", code="unavailable")


def too_large_download(size: int | None) -> SendError:
    """Why a customer's file cannot be fetched from Telegram."""
    what = f"the file is {size / MB:.1f} MB" if size else "the file is larger than 20 MB"
    return SendError(f"{what}; Telegram bots can only download files up to 20 MB", code="too_large", permanent=True)


def too_large_upload(size: int | None = None) -> SendError:
    """Why a file cannot be sent to a Telegram customer."""
    what = f"the file is {size / MB:.1f} MB" if size else "the file is larger than 50 MB"
    return SendError(f"{what}; Telegram bots can only send files up to 50 MB", code="too_large", permanent=True)
