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
from channels.telegram.limits import too_large_upload

_BLOCKED: Final = "bot was blocked by the user"
_NO_TOPIC: Final = "message thread not found"


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
        reason = "the user blocked the bot" if _BLOCKED in detail else f"Telegram refused: {detail}"
        return SendError(reason, code="blocked", permanent=True, unreachable=True)
    if isinstance(err, TelegramEntityTooLarge):
        return too_large_upload()
    if isinstance(err, (TelegramBadRequest, TelegramMigrateToChat)):
        return SendError(description, code="bad_request", permanent=True)
    if isinstance(err, TelegramUnauthorizedError):
        return SendError(f"Telegram rejected the token of bot {account}", code="unavailable")
    # Network trouble, 5xx, a restarting server: worth another try later.
    return SendError(f"Telegram is unavailable: {description}", code="unavailable")


def topic_missing(err: SendError) -> bool:
    """Telegram refused a message into a forum topic that is not there (any more): it was deleted."""
    return err.code == "bad_request" and _NO_TOPIC in err.reason
