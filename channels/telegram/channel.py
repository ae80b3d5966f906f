"""Telegram customer bots through aiogram: webhook or long polling in, the Bot API out, files on demand."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNotFound, TelegramUnauthorizedError
from aiogram.types import BufferedInputFile, Message, Update
from aiohttp import web

from channels.base import Channel, ChannelHost, HostUnavailable, OutboundMessage, SendError, SentRef
from channels.telegram.files import download
from channels.telegram.inbound import CHANNEL, message_ref, parse_message_ref
from channels.telegram.limits import UPLOAD_LIMIT, too_large_upload
from channels.telegram.outbound import Part, edit_call, plan, upload_name
from channels.telegram.polling import poll
from channels.telegram.routers import build_routers
from channels.telegram.sender import Sender
from channels.telegram.session import make_bot
from channels.telegram.webhook import ALLOWED_UPDATES, UPDATE_LIMIT, UnreadableUpdate, authentic, parse_update, process
from gateway.config import ConfigError, Settings, TelegramBotSettings, TelegramSettings
from gateway.http import HttpClient
from gateway.inputs import InputError, read_body, refusal
from gateway.logs import log_context
from gateway.model import Media
from gateway.tasks import stop

logger = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/channels/telegram/{bot_name}"
# Flood-control waits are sat out inside send (holding the chat's place) up to this much in
# total; beyond it the message goes back to the outbox, which retries after retry_after. It is
# well under the outbox's lease, so no other worker takes the message over meanwhile.
MAX_INLINE_WAIT: Final = 60.0


class TelegramChannel(Channel):
    """Customers write to one or more bots; operators' replies go out through the bot the customer used."""

    name = CHANNEL
    can_edit = True

    def __init__(
        self, host: ChannelHost, settings: TelegramSettings, public_url: str, source: str, http: HttpClient
    ) -> None:
        super().__init__(host)
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.source = source
        self.http = http
        self._webhook_secrets = {b.name: b.webhook_secret for b in settings.bots}
        self._dispatcher = Dispatcher(host=host, disable_fsm=True)  # customers' updates need no FSM state
        self._dispatcher.include_routers(*build_routers(settings.accept_groups))
        self._bots: dict[str, Bot] = {}
        self._polls: list[asyncio.Task[None]] = []
        self._sender = Sender()
        # Parts of a multi-part message already delivered, so a retry does not repeat them.
        self._delivered: dict[str, list[int]] = {}
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings, host: ChannelHost, http: HttpClient) -> TelegramChannel | None:
        if settings.telegram is None:
            return None
        return cls(host, settings.telegram, settings.server.public_url, settings.source, http)

    def register(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.webhook)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check every token with getMe, then register the webhooks or start polling."""
        with log_context(channel=self.name):
            try:
                for index, entry in enumerate(self.settings.bots):
                    self._bots[entry.name] = make_bot(entry.token, self.settings.api_base, self.http)
                    await self._check_token(index, entry)
                for entry in self.settings.bots:
                    if self.settings.mode == "webhook":
                        await self._set_webhook(entry)
                    else:
                        self._start_polling(entry)
            except BaseException:
                await self.close()
                raise
            self._started = True

    async def close(self) -> None:
        self._started = False
        await stop(*self._polls)
        self._polls.clear()
        self._bots.clear()

    def ready(self) -> bool:
        return self._started

    async def _check_token(self, index: int, entry: TelegramBotSettings) -> None:
        key = f"telegram.bots[{index}]"
        try:
            me = await self._bots[entry.name].get_me()
        except (TelegramUnauthorizedError, TelegramNotFound) as err:
            raise ConfigError(
                f"{self.source}: {key}.token: Telegram rejected the token of bot {entry.name!r} (getMe: {err.message})"
            ) from None
        except TelegramAPIError as err:
            raise RuntimeError(
                f"Telegram bot {entry.name!r}: the Bot API at {self.settings.api_base} "
                f"did not answer getMe: {err.message}"
            ) from None
        logger.info("Telegram bot %s is @%s (id %d)", entry.name, me.username, me.id)

    async def _set_webhook(self, entry: TelegramBotSettings) -> None:
        url = f"{self.public_url}/channels/telegram/{entry.name}"
        try:
            await self._bots[entry.name].set_webhook(
                url, secret_token=entry.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        except TelegramAPIError as err:
            raise RuntimeError(f"Telegram bot {entry.name!r}: setWebhook({url}) failed: {err.message}") from None
        logger.info("Telegram bot %s receives updates at %s", entry.name, url)

    def _start_polling(self, entry: TelegramBotSettings) -> None:
        bot = self._bots[entry.name]

        async def handle(update: Update) -> None:
            with log_context(channel=self.name):
                await self._process(bot, entry.name, update)

        # Telegram serves getUpdates to one caller at a time: one gateway process polls each bot.
        polling = self.host.run_alone(f"telegram-poll:{bot.id}", lambda: poll(bot, handle, who=entry.name))
        self._polls.append(asyncio.create_task(polling, name=f"telegram-poll-{entry.name}"))
        logger.info("Telegram bot %s receives updates by long polling", entry.name)

    # -- receiving -----------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /channels/telegram/{bot_name}: check the secret, then store the update before answering."""
        name = request.match_info["bot_name"]
        with log_context(channel=self.name):
            secret = self._webhook_secrets.get(name)
            if secret is None:
                raise web.HTTPNotFound(text="no such bot")
            if not authentic(request, secret):
                logger.warning("bot %s: webhook call from %s refused: wrong or no secret token", name, request.remote)
                raise web.HTTPUnauthorized(text="Unauthorized")
            bot = self._bots.get(name)
            if bot is None:
                raise web.HTTPServiceUnavailable(text="the Telegram channel is not started")
            try:
                body = await read_body(request, UPDATE_LIMIT)
            except InputError as err:
                raise refusal(err) from None
            try:
                update = parse_update(body, bot)
            except UnreadableUpdate as err:
                await self.host.on_unreadable(f"telegram:{name}", err.reason, body.decode("utf-8", "replace"))
                return web.json_response({})
            try:
                await self._process(bot, name, update)
            except HostUnavailable as err:
                # Not acknowledged: Telegram delivers the update again, and storing is idempotent.
                logger.warning(
                    "bot %s: update %d not stored now (%s); Telegram will retry", name, update.update_id, err
                )
                return web.Response(status=503, text="the update could not be stored; try again")
            return web.json_response({})

    async def _process(self, bot: Bot, account: str, update: Update) -> None:
        async def keep(reason: str, payload: str) -> None:
            await self.host.on_unreadable(f"telegram:{account}", reason, payload)

        async def handle(update: Update) -> None:
            await self._dispatcher.feed_update(bot, update, account=account)

        await process(update, handle, keep, (HostUnavailable,))

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SentRef:
        """Deliver through the customer's bot, in order per chat, sitting out short flood-control waits."""
        account = message.recipient.account
        bot = self._bot(account)
        parts = plan(message)
        chat_id = int(message.recipient.external_id)
        with log_context(channel=self.name):
            async with self._sender.hold(bot, chat_id):
                delivered = self._delivered.pop(message.message_id, [])
                deadline = asyncio.get_running_loop().time() + MAX_INLINE_WAIT
                try:
                    for part in parts[len(delivered) :]:
                        sent = await self._call(bot, account, part, deadline, message.message_id)
                        delivered.append(sent.message_id)
                except SendError as err:
                    if delivered and not err.permanent:
                        self._delivered[message.message_id] = delivered
                    raise
        return SentRef(channel_message_id=message_ref(chat_id, delivered[0]))

    async def edit(self, message: OutboundMessage, channel_message_id: str | None) -> None:
        """editMessageText, or editMessageCaption for a file, on the customer's copy."""
        account = message.recipient.account
        bot = self._bot(account)
        chat_id = int(message.recipient.external_id)
        target = parse_message_ref(channel_message_id or "")
        if target is None or target[0] != chat_id:
            raise SendError("Telegram never reported this message as delivered", code="unsupported", permanent=True)
        method = edit_call(message, target[1])
        with log_context(channel=self.name):
            async with self._sender.hold(bot, chat_id):
                deadline = asyncio.get_running_loop().time() + MAX_INLINE_WAIT
                try:
                    await self._sender.call(bot, method, deadline=deadline, who=account)
                except SendError as err:
                    # The customer's copy already says this (the operator changed only formatting, say).
                    if "message is not modified" not in err.reason:
                        raise

    def _bot(self, account: str) -> Bot:
        bot = self._bots.get(account)
        if bot is None:
            raise SendError(
                f"the Telegram bot {account!r} is not configured or not started",
                code="unavailable",
                permanent=account not in self._webhook_secrets,
            )
        return bot

    async def _call(self, bot: Bot, account: str, part: Part, deadline: float, message_id: str) -> Message:
        params = dict(part.params)
        if part.media is not None and part.file_field is not None:
            params[part.file_field] = await self._file_input(part.media, account, part.file_field)

        async def waiting(seconds: float, reason: str) -> None:
            await self.host.on_waiting(message_id, seconds, reason)

        return await self._sender.call(bot, part.method(**params), deadline=deadline, who=account, on_wait=waiting)

    async def _file_input(self, media: Media, account: str, file_field: str) -> str | BufferedInputFile:
        """A file_id when this bot holds the file; otherwise the bytes, uploaded (file_ids are per bot)."""
        if media.source == CHANNEL and media.account == account:
            return media.ref
        try:
            data = await self.host.fetch_media(media)
        except LookupError as err:
            raise SendError(str(err), code="unsupported", permanent=True) from None
        if len(data) > UPLOAD_LIMIT:
            raise too_large_upload(len(data))
        return BufferedInputFile(data, filename=upload_name(media, file_field))

    # -- files ---------------------------------------------------------------------------------

    async def fetch_media(self, media: Media) -> bytes:
        """A customer's file, through the bot that received it (getFile + download, at most 20 MB)."""
        bot = self._bots.get(media.account or "")
        if bot is None:
            raise SendError(
                f"the Telegram bot {media.account!r} that received this file is not available",
                code="unavailable",
                permanent=media.account not in self._webhook_secrets,
            )
        with log_context(channel=self.name):
            return await download(bot, media.ref, media.size)
