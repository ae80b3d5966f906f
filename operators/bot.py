"""The operator bot: a Telegram bot operators work in; webhook or long polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import Update
from aiohttp import web

from channels.telegram.polling import poll
from channels.telegram.session import make_bot
from channels.telegram.webhook import ALLOWED_UPDATES, authentic, read_update
from gateway.config import Settings
from gateway.http import HttpClient
from gateway.logs import log_context
from gateway.storage.mongo import Storage
from operators import commands as supervisor_commands
from operators import mirror
from operators.access import OperatorsOnly
from operators.handlers import canned, chats, close, customers, history, info, replies, transfer
from operators.handlers import duplicates as duplicate_commands
from operators.handlers import help as help_commands
from operators.handlers import presence as presence_commands
from operators.relay import Relay

logger = logging.getLogger(__name__)

DEFAULT_API = "https://api.telegram.org"
WEBHOOK_PATH = "/operators/telegram"


class OperatorBot:
    """Owns the operator bot's session, dispatcher and webhook; handlers get services by name."""

    def __init__(self, settings: Settings, store: Storage, relay: Relay, http: HttpClient, **services: Any) -> None:
        """`services` (conversations, routing, merger, ...) reach handlers by name, as aiogram injects them."""
        assert settings.operator_bot is not None
        self.settings = settings
        self.http = http
        self.config = settings.operator_bot
        telegram = settings.telegram
        self.api_base = self.config.api_base or (telegram.api_base if telegram else DEFAULT_API)
        self.mode = self.config.mode or (telegram.mode if telegram else "webhook")
        self.store = store
        self.relay = relay
        self.bot: Bot | None = None
        self._polling: asyncio.Task[None] | None = None
        self.dispatcher = Dispatcher(store=store, relay=relay, settings=settings, **services)
        self.dispatcher.update.outer_middleware(OperatorsOnly(store, self.config))
        # Commands first; then the help router answers any command nobody handled; the replies
        # router catches every other message, so it comes last.
        self.dispatcher.include_routers(
            mirror.build_router(),
            presence_commands.build_router(),
            chats.build_router(),
            history.build_router(),
            info.build_router(),
            close.build_router(),
            transfer.build_router(),
            customers.build_router(),
            canned.build_router(),
            supervisor_commands.build_router(),
            duplicate_commands.build_router(),
            help_commands.build_router(),
            replies.build_router(),
        )

    def register(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self) -> None:
        """Check the token, publish the menu, then register the webhook or start polling."""
        bot = make_bot(self.config.token, self.api_base, self.http)
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError:
            raise RuntimeError("operator_bot.token was rejected by Telegram (getMe: Unauthorized)") from None
        self.bot = self.relay.bot = bot
        logger.info("operator bot @%s ready (%s mode)", me.username, self.mode)
        await help_commands.set_menu(bot, await self.store.operators.all())
        if self.mode == "webhook":
            await bot.set_webhook(
                self.settings.server.public_url + WEBHOOK_PATH,
                secret_token=self.config.webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
            )
        else:
            self._polling = asyncio.create_task(
                poll(bot, self._handle, who="operator bot"), name="operator-bot-polling"
            )

    async def close(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        self.bot = None

    def ready(self) -> bool:
        return self.bot is not None

    async def webhook(self, request: web.Request) -> web.Response:
        """Telegram's POST: the secret is checked before the body is read."""
        if self.bot is None or not authentic(request, self.config.webhook_secret):
            return web.Response(status=401, text="Unauthorized")
        update = await read_update(request, self.bot)
        if update is None:
            return web.Response(status=400, text="not a Telegram update")
        await self._handle(update)
        return web.json_response({})

    async def _handle(self, update: Update) -> None:
        assert self.bot is not None
        with log_context(channel="operator_bot"):
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except TelegramAPIError:
                # Answering the operator failed; Telegram re-sending the update would repeat what was done.
                logger.exception("operator bot could not answer update %s", update.update_id)
