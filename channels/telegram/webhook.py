"""Telegram updates in: the webhook secret checked before anything is read, bodies read as Updates, and an
update that cannot be understood kept as a dead letter and acknowledged, so Telegram does not retry it forever."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

logger = logging.getLogger(__name__)

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query")
# An update is a few kilobytes at most (a 4096-character text with its entities); a megabyte is not one.
UPDATE_LIMIT: Final = 1024 * 1024
# JSON escapes of a surrogate or NUL: only a body with one of these needs the slow, sanitising parse.
_SUSPECT_ESCAPE: Final = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")

Keep = Callable[[str, str], Awaitable[None]]  # (reason, payload): store a dead letter


class UnreadableUpdate(ValueError):
    """A body that is not a Telegram Update we can work with; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authentic(request: web.Request, secret: str) -> bool:
    """Whether the call carries the secret token we registered (compared in constant time, as bytes)."""
    given = request.headers.get(SECRET_HEADER, "")
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


def parse_update(body: bytes, bot: Bot) -> Update:
    """The body as an Update; strings that could not be stored (lone surrogates, NUL) are replaced first."""
    try:
        if not _SUSPECT_ESCAPE.search(body):
            return Update.model_validate_json(body, context={"bot": bot})
        return Update.model_validate(_storable(json.loads(body)), context={"bot": bot})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(body)"
        raise UnreadableUpdate(
            f"not a Telegram Update ({err.error_count()} problems; {where}: {first['msg']})"
        ) from None
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, or nested too deep to read
        raise UnreadableUpdate(f"not a Telegram Update: {type(err).__name__}") from None


async def process(
    update: Update, handle: Callable[[Update], Awaitable[Any]], keep: Keep, transient: tuple[type[Exception], ...]
) -> None:
    """Handle an update; a failure other than a `transient` one (storage down: raised, so the update comes
    again) means it cannot be understood, and it is kept as a dead letter instead."""
    try:
        await handle(update)
    except transient:
        raise
    except Exception as err:  # noqa: BLE001 - whatever broke, the update is kept and the sender answered
        await keep(f"update {update.update_id} could not be handled: {type(err).__name__}: {err}", _dump(update))


def _dump(update: Update) -> str:
    return update.model_dump_json(exclude_unset=True, exclude_none=True)


def _storable(value: Any) -> Any:
    """A parsed JSON value whose strings (keys too) can all be stored: lone surrogates and NUL replaced."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value).replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value
