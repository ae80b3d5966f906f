"""The operator bot: a Telegram bot operators work in; webhook or long polling."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import Update
from aiohttp import web
from pymongo.errors import PyMongoError

from channels.telegram.long_texts import SplitLongTexts
from channels.telegram.polling import poll
from channels.telegram.session import make_bot
from channels.telegram.webhook import ALLOWED_UPDATES, UPDATE_LIMIT, UnreadableUpdate, authentic, parse_update, process
from gateway.config import Settings
from gateway.dead_letters import DeadLetters
from gateway.http import HttpClient
from gateway.inputs import InputError, read_body, refusal
from gateway.leases import Leases
from gateway.logs import log_context
from gateway.model import utcnow
from gateway.storage.mongo import Storage
from gateway.tasks import stop
from operators import commands as supervisor_commands
from operators import mirror
from operators.access import OperatorsOnly
from operators.handlers import (
    canned,
    chats,
    close,
    customers,
    edits,
    history,
    info,
    privacy,
    replies,
    templates,
    transfer,
    translate,
)
from operators.handlers import duplicates as duplicate_commands
from operators.handlers import help as help_commands
from operators.handlers import presence as presence_commands
from operators.relay import Relay

logger = logging.getLogger(__name__)

DEFAULT_API = "https://api.telegram.org"
WEBHOOK_PATH = "/operators/telegram"
# An update whose handling never finished (the process stopped) may be handled again after this long.
UPDATE_LEASE = timedelta(minutes=2)


class OperatorBot:
    """Owns the operator bot's session, dispatcher and webhook; handlers get services by name."""

    def __init__(
        self,
        settings: Settings,
        store: Storage,
        relay: Relay,
        http: HttpClient,
        dead_letters: DeadLetters,
        leases: Leases,
        **services: Any,
    ) -> None:
        """`services` (conversations, routing, merger, ...) reach handlers by name, as aiogram injects them."""
        assert settings.operator_bot is not None
        self.settings = settings
        self.http = http
        self.leases = leases
        self.config = settings.operator_bot
        telegram = settings.telegram
        self.api_base = self.config.api_base or (telegram.api_base if telegram else DEFAULT_API)
        self.mode = self.config.mode or (telegram.mode if telegram else "webhook")
        self.store = store
        self.relay = relay
        self.dead_letters = dead_letters
        self.bot: Bot | None = None
        self._polling: asyncio.Task[None] | None = None
        # No conversation states (FSM): every update stands alone, and what it needs is in MongoDB.
        self.dispatcher = Dispatcher(store=store, relay=relay, settings=settings, disable_fsm=True, **services)
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
            privacy.build_router(),
            templates.build_router(),
            translate.build_router(),
            help_commands.build_router(),
            edits.build_router(),
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
        bot.session.middleware(SplitLongTexts())
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
            polling = self.leases.run(f"telegram-poll:{bot.id}", lambda: poll(bot, self._handle, who="operator bot"))
            self._polling = asyncio.create_task(polling, name="operator-bot-polling")

    async def close(self) -> None:
        if self._polling is not None:
            await stop(self._polling)
        self.bot = None

    def ready(self) -> bool:
        return self.bot is not None

    async def webhook(self, request: web.Request) -> web.Response:
        """Telegram's POST: the secret is checked before the body is read; an update is handled once."""
        if self.bot is None or not authentic(request, self.config.webhook_secret):
            return web.Response(status=401, text="Unauthorized")
        try:
            body = await read_body(request, UPDATE_LIMIT)
        except InputError as err:
            raise refusal(err) from None
        try:
            update = parse_update(body, self.bot)
        except UnreadableUpdate as err:
            await self.dead_letters.keep("operator_bot", err.reason, body.decode("utf-8", "replace"))
            return web.json_response({})
        try:
            await self._handle(update)
        except PyMongoError as err:
            logger.warning("operator bot update %d not handled now (%s); Telegram will retry", update.update_id, err)
            return web.Response(status=503, text="the update could not be handled; try again")
        return web.json_response({})

    async def _handle(self, update: Update) -> None:
        """Handle an update unless it was handled before (Telegram re-delivers when an answer is late)."""
        key, now = f"operator:{update.update_id}", utcnow()
        with log_context(channel="operator_bot"):
            if not await self.store.updates.claim(key, now, now - UPDATE_LEASE):
                logger.info("operator bot update %d was handled already", update.update_id)
                return
            try:
                await process(update, self._feed, self._keep, (PyMongoError,))
            except PyMongoError:
                await self.store.updates.release(key)
                raise
            await self.store.updates.finish(key)

    async def _feed(self, update: Update) -> None:
        assert self.bot is not None
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except TelegramAPIError as err:
            # What the update asked for was done; only the answer to the operator failed. Doing it again
            # on a re-delivery would repeat it, so it counts as handled.
            logger.warning("operator bot could not answer update %s: %s", update.update_id, err.message)

    async def _keep(self, reason: str, payload: str) -> None:
        await self.dead_letters.keep("operator_bot", reason, payload)
