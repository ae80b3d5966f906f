"""Bots that share the process's one aiohttp session instead of opening one each."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiohttp import ClientSession

from gateway.http import HttpClient

# aiogram reads every answer through `Response[the method's result type]`. Pydantic caches that class only
# while something references it, so without these references it is rebuilt (milliseconds) after each GC.
_RESPONSE_TYPES: dict[Any, Any] = {}


class SharedSession(AiohttpSession):
    """aiogram's session over a ClientSession the app owns: closing a bot leaves it open for the others."""

    def __init__(self, http: HttpClient, api_base: str) -> None:
        super().__init__(api=TelegramAPIServer.from_base(api_base.rstrip("/")))
        self._http = http

    async def create_session(self) -> ClientSession:
        return self._http.session

    async def close(self) -> None:
        """The app closes the shared session once, when it stops."""

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)


def make_bot(token: str, api_base: str, http: HttpClient) -> Bot:
    """A bot speaking to `api_base` through the shared session."""
    return Bot(token, session=SharedSession(http, api_base))
