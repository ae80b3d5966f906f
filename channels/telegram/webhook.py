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
# JSON escapes of a surrogate or NUL, or a run of 19 digits (a number that may not fit 64 bits): only a body
# with one of these needs the slow, checking parse.
_SUSPECT: Final = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|[0-9]{19}")
# Telegram's ids and sizes fit in 64 bits (ids in 52); a bigger number cannot be stored, so it is not Telegram's.
_INT64: Final = range(-(2**63), 2**63)
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
    """The body as an Update; strings that could not be stored (lone surrogates, NUL) are replaced first, and
    numbers beyond 64 bits refused."""
    try:
        if not _SUSPECT.search(body):
            return Update.model_validate_json(body, context={"bot": bot})
        return Update.model_validate(_storable(json.loads(body)), context={"bot": bot})
    except UnreadableUpdate:
        raise
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
    except Exception as err:
        # A handler that fails on an update is a bug to fix, not only a letter to read: log where it broke.
        logger.exception("update %s could not be handled", update.update_id)
        await keep(f"update {update.update_id} could not be handled: {type(err).__name__}: {err}", _dump(update))


def _dump(update: Update) -> str:
    return update.model_dump_json(exclude_unset=True, exclude_none=True)


def _storable(value: Any) -> Any:
    """A parsed JSON value whose strings (keys too) can all be stored: lone surrogates and NUL replaced;
    UnreadableUpdate for a number that cannot be."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value).replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, int) and value not in _INT64:
        raise UnreadableUpdate("not a Telegram Update: a number beyond 64 bits")
    return value
