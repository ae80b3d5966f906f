"""Telegram customer bots through aiogram: webhook or long polling in, the Bot API out, files on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Final

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, Message, Update
from aiohttp import web
from pydantic import ValidationError

from channels.base import Channel, ChannelHost, OutboundMessage, SendError, SentRef
from channels.telegram.errors import (
    DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    send_error,
    too_large_download,
    too_large_upload,
)
from channels.telegram.inbound import CHANNEL, message_ref
from channels.telegram.locks import ChatLocks
from channels.telegram.outbound import Part, plan, upload_name
from channels.telegram.routers import build_routers
from gateway.config import ConfigError, Settings, TelegramBotSettings, TelegramSettings
from gateway.logs import log_context
from gateway.model import Media

logger = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/channels/telegram/{bot_name}"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query")
# Flood-control waits are sat out inside send (holding the chat's place) up to this much in
# total; beyond it the message goes back to the outbox, which retries after retry_after. It is
# well under the outbox's lease, so no other worker takes the message over meanwhile.
MAX_INLINE_WAIT: Final = 60.0
POLL_TIMEOUT: Final = 25
POLL_BACKOFF_MAX: Final = 30.0
DOWNLOAD_TIMEOUT: Final = 60


class TelegramChannel(Channel):
    """Customers write to one or more bots; operators' replies go out through the bot the customer used."""

    name = CHANNEL

    def __init__(self, host: ChannelHost, settings: TelegramSettings, public_url: str, source: str) -> None:
        super().__init__(host)
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.source = source
        self._webhook_secrets = {b.name: b.webhook_secret for b in settings.bots}
        self._dispatcher = Dispatcher(host=host)
        self._dispatcher.include_routers(*build_routers(settings.accept_groups))
        self._bots: dict[str, Bot] = {}
        self._polls: list[asyncio.Task[None]] = []
        self._chats = ChatLocks()
        # Parts of a multi-part message already delivered, so a retry does not repeat them.
        self._delivered: dict[str, list[int]] = {}
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings, host: ChannelHost) -> TelegramChannel | None:
        if settings.telegram is None:
            return None
        return cls(host, settings.telegram, settings.server.public_url, settings.source)

    def register(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.webhook)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check every token with getMe, then register the webhooks or start polling."""
        with log_context(channel=self.name):
            try:
                for index, entry in enumerate(self.settings.bots):
                    session = AiohttpSession(api=TelegramAPIServer.from_base(self.settings.api_base.rstrip("/")))
                    self._bots[entry.name] = Bot(entry.token, session=session)
                    await self._check_token(index, entry)
                for entry in self.settings.bots:
                    if self.settings.mode == "webhook":
                        await self._set_webhook(entry)
                    else:
                        await self._start_polling(entry)
            except BaseException:
                await self.close()
                raise
            self._started = True

    async def close(self) -> None:
        self._started = False
        for task in self._polls:
            task.cancel()
        for task in self._polls:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._polls.clear()
        for bot in self._bots.values():
            await bot.session.close()
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

    async def _start_polling(self, entry: TelegramBotSettings) -> None:
        bot = self._bots[entry.name]
        # getUpdates is refused while a webhook is set; pending updates are kept.
        await bot.delete_webhook(drop_pending_updates=False)
        self._polls.append(asyncio.create_task(self._poll(bot, entry.name), name=f"telegram-poll-{entry.name}"))
        logger.info("Telegram bot %s receives updates by long polling", entry.name)

    # -- receiving -----------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """POST /channels/telegram/{bot_name}: check the secret, then store the update before answering."""
        name = request.match_info["bot_name"]
        with log_context(channel=self.name):
            secret = self._webhook_secrets.get(name)
            if secret is None:
                raise web.HTTPNotFound(text="no such bot")
            given = request.headers.get(SECRET_HEADER, "")
            if not secrets.compare_digest(given.encode(), secret.encode()):
                logger.warning(
                    "bot %s: webhook call from %s refused: %s secret token",
                    name,
                    request.remote,
                    "wrong" if given else "no",
                )
                raise web.HTTPUnauthorized(text="Unauthorized")
            bot = self._bots.get(name)
            if bot is None:
                raise web.HTTPServiceUnavailable(text="the Telegram channel is not started")
            try:
                update = Update.model_validate_json(await request.read(), context={"bot": bot})
            except ValidationError as err:
                logger.warning("bot %s: webhook body is not a Telegram Update (%d problems)", name, err.error_count())
                raise web.HTTPBadRequest(text="the body is not a Telegram Update") from None
            try:
                await self._dispatcher.feed_update(bot, update, account=name)
            except Exception:
                # Not acknowledged: Telegram delivers the update again, and storing is idempotent.
                logger.exception("bot %s: update %d could not be stored", name, update.update_id)
                return web.Response(status=500, text="the update could not be stored")
            return web.json_response({})

    async def _poll(self, bot: Bot, account: str) -> None:
        """Long-poll getUpdates; an update is confirmed (offset moved past it) only once it is stored."""
        offset: int | None = None
        failures = 0
        with log_context(channel=self.name):
            while True:
                try:
                    updates = await bot.get_updates(
                        offset=offset,
                        timeout=POLL_TIMEOUT,
                        allowed_updates=list(ALLOWED_UPDATES),
                        request_timeout=POLL_TIMEOUT + 30,
                    )
                    for update in updates:
                        await self._dispatcher.feed_update(bot, update, account=account)
                        offset = update.update_id + 1
                    failures = 0
                    continue
                except AiogramError as err:
                    failures += 1
                    logger.warning(
                        "bot %s: getUpdates failed (%s)", account, getattr(err, "message", type(err).__name__)
                    )
                except Exception:
                    failures += 1
                    logger.exception("bot %s: an update could not be stored; it is fetched again", account)
                await asyncio.sleep(min(2.0**failures, POLL_BACKOFF_MAX))

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SentRef:
        """Deliver through the customer's bot, in order per chat, sitting out short flood-control waits."""
        account = message.recipient.account
        bot = self._bots.get(account)
        if bot is None:
            raise SendError(
                f"the Telegram bot {account!r} is not configured or not started",
                code="unavailable",
                permanent=account not in self._webhook_secrets,
            )
        parts = plan(message)
        chat_id = int(message.recipient.external_id)
        with log_context(channel=self.name):
            async with self._chats.hold((account, chat_id)):
                delivered = self._delivered.pop(message.message_id, [])
                wait_until = asyncio.get_running_loop().time() + MAX_INLINE_WAIT
                try:
                    for part in parts[len(delivered) :]:
                        sent = await self._call(bot, account, part, wait_until)
                        delivered.append(sent.message_id)
                except SendError as err:
                    if delivered and not err.permanent:
                        self._delivered[message.message_id] = delivered
                    raise
        return SentRef(channel_message_id=message_ref(chat_id, delivered[0]))

    async def _call(self, bot: Bot, account: str, part: Part, wait_until: float) -> Message:
        params = dict(part.params)
        if part.media is not None and part.file_field is not None:
            params[part.file_field] = await self._file_input(part.media, account, part.file_field)
        method = part.method(**params)
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await bot(method)
            except TelegramRetryAfter as err:
                if loop.time() + err.retry_after > wait_until:
                    raise send_error(err, account) from None
                logger.info(
                    "bot %s: flood control on chat %s, waiting %d s", account, params["chat_id"], err.retry_after
                )
                await asyncio.sleep(err.retry_after)
            except TelegramAPIError as err:
                raise send_error(err, account) from None
            except AiogramError as err:  # e.g. a proxy answering with HTML instead of JSON
                raise SendError(
                    f"Telegram's answer could not be read ({type(err).__name__})", code="unavailable"
                ) from None

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
        if media.size and media.size > DOWNLOAD_LIMIT:
            raise too_large_download(media.size)
        with log_context(channel=self.name):
            try:
                file = await bot.get_file(media.ref)
            except TelegramBadRequest as err:
                if "too big" in err.message:
                    raise too_large_download(media.size) from None
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
            return await self._download(bot, file.file_path)

    async def _download(self, bot: Bot, file_path: str) -> bytes:
        url = bot.session.api.file_url(bot.token, file_path)
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
