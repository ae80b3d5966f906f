"""The emulator's HTTP side and its test-facing API: lifecycle, webhook delivery, failure injection, inspection."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import aiohttp
from aiohttp import web

from . import errors as e
from .call import Call, files_by_param
from .customers import UpdateBuilders
from .errors import ApiError
from .methods import METHODS_BY_LOWER, SEND_METHODS, BotApi, commands_key
from .records import (
    CallbackAnswer,
    Deletion,
    Delivery,
    Reaction,
    RecordedRequest,
    SentMessage,
    StoredFile,
    Topic,
    UploadedFile,
    WebhookState,
)
from .wire import MAX_UPLOAD_BYTES, decode_params, dumps, json_response, ok_body, read_request, read_webhook_reply
from .world import BotState, Json, World

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_RETRY_AFTER: Final = 3
_TOKEN: Final = re.compile(r"^\d+:\S+$")
# Methods a webhook reply may not call (tdlib WebhookActor): their result would be lost.
_IGNORED_IN_WEBHOOK_REPLY: Final = frozenset({"setwebhook", "deletewebhook", "close", "logout"})


class _Configured:
    """Sentinel: send the secret that setWebhook configured."""

    def __repr__(self) -> str:
        return "CONFIGURED"


CONFIGURED: Final = _Configured()


@dataclass
class _Failure:
    error_code: int
    description: str
    parameters: dict[str, Any] | None
    remaining: int | None
    chat_id: int | None = None
    method: str | None = None
    token: str | None = None

    def matches(self, token: str, method: str, chat_id: Any) -> bool:
        return (
            (self.token is None or self.token == token)
            and (self.method is None or self.method == method)
            and (self.chat_id is None or self.chat_id == chat_id)
        )


class TelegramEmulator(UpdateBuilders):
    """A local Telegram Bot API server: `/bot{token}/{method}` and `/file/bot{token}/{file_path}`."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._world = World(clock)
        self._api = BotApi(self._world)
        self._failures: list[_Failure] = []
        self._blocked: set[tuple[int, str | None]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        self._world.closing = False
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}"
        self._http = aiohttp.ClientSession()

    @property
    def base_url(self) -> str:
        """Server root for `TelegramAPIServer.from_base(...)`, e.g. "http://127.0.0.1:41234"."""
        if self._base_url is None:
            raise RuntimeError("emulator not started")
        return self._base_url

    async def close(self) -> None:
        """End pending long polls, stop the server and the webhook client."""
        self._world.closing = True
        for bot in self._world.bots.values():
            bot.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- bots ------------------------------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str = "Gateway") -> Json:
        """Register a bot; its id is the number before ':' in the token. Returns the getMe User."""
        if not _TOKEN.match(token):
            raise ValueError(f"invalid token {token!r}: expected '<digits>:<secret>'")
        if token in self._world.bots:
            raise ValueError("bot already registered")
        user: Json = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._world.bots[token] = BotState(token=token, user=user)
        return dict(user)

    # -- delivering updates ----------------------------------------------------------------------

    async def deliver(self, token: str, update: Json, *, secret: str | _Configured | None = CONFIGURED) -> int:
        """Hand an update to the bot: POST it to the webhook (returns its HTTP status) or queue it for getUpdates (0).

        `secret` overrides the X-Telegram-Bot-Api-Secret-Token header for negative tests (None = omit it).
        Updates excluded by the bot's allowed_updates are dropped (returns 0, Delivery.filtered).
        """
        bot = self._bot_state(token)
        if not bot.wants(update):
            self._world.deliveries.append(Delivery(token, copy.deepcopy(update), 0, None, filtered=True))
            return 0
        if bot.webhook is None:
            bot.pending.append(copy.deepcopy(update))
            bot.notify()
            self._world.deliveries.append(Delivery(token, copy.deepcopy(update), 0, None))
            return 0
        return await self._post_update(bot, bot.webhook, update, secret)

    async def deliver_pending(self, token: str) -> list[int]:
        """POST updates queued before setWebhook to the webhook, oldest first; 2xx ones leave the queue."""
        bot = self._bot_state(token)
        if bot.webhook is None:
            raise RuntimeError("no webhook set")
        statuses = []
        for update in list(bot.pending):
            status = await self._post_update(bot, bot.webhook, update, CONFIGURED)
            statuses.append(status)
            if 200 <= status < 300:
                bot.pending.remove(update)
        return statuses

    async def _post_update(
        self, bot: BotState, webhook: WebhookState, update: Json, secret: str | _Configured | None
    ) -> int:
        if self._http is None:
            raise RuntimeError("emulator not started")
        header = webhook.secret_token if isinstance(secret, _Configured) else secret
        headers = {aiohttp.hdrs.CONTENT_TYPE: "application/json"}
        if header:
            headers[SECRET_HEADER] = header
        try:
            async with self._http.post(
                webhook.url, data=dumps(update).encode(), headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as response:
                status, reason = response.status, response.reason
                body = await response.read()
                content_type = response.headers.get(aiohttp.hdrs.CONTENT_TYPE, "")
        except aiohttp.ClientError as error:
            webhook.last_error_date = self._world.now()
            refused = isinstance(error, aiohttp.ClientConnectorError)
            webhook.last_error_message = "Connection refused" if refused else str(error)
            raise
        self._world.deliveries.append(Delivery(bot.token, copy.deepcopy(update), status, header, body))
        if 200 <= status < 300:
            await self._run_webhook_reply(bot, content_type, body)
        else:
            webhook.last_error_date = self._world.now()
            webhook.last_error_message = f"Wrong response from the webhook: {status} {reason}"
        return status

    async def _run_webhook_reply(self, bot: BotState, content_type: str, body: bytes) -> None:
        raw, parts = read_webhook_reply(content_type, body)
        method = str(raw.pop("method", ""))
        if not method or method.lower().startswith("get") or method.lower() in _IGNORED_IN_WEBHOOK_REPLY:
            return
        await self._execute(bot.token, method, raw, parts, "POST", via_webhook_reply=True)

    # -- failure injection -----------------------------------------------------------------------

    def fail(
        self,
        chat_id: int,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        *,
        method: str | None = None,
        token: str | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Make the next `times` calls targeting chat_id (optionally one method / bot) fail; times=None = until cleared.

        429 gets "Too Many Requests: retry after N" and parameters.retry_after=N (N defaults to 3).
        """
        self._failures.append(
            self._failure(error_code, description, retry_after, times, chat_id, method, token, migrate_to_chat_id)
        )

    def fail_method(
        self,
        method: str,
        error_code: int = 500,
        description: str | None = None,
        *,
        times: int | None = 1,
        retry_after: int | None = None,
        token: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next `times` calls of a method (any chat unless chat_id) fail with (error_code, description)."""
        self._failures.append(self._failure(error_code, description, retry_after, times, chat_id, method, token, None))

    def block(self, chat_id: int, token: str | None = None) -> None:
        """The user blocks the bot (or every bot): each send to chat_id gets 403 until unblock()."""
        self._blocked.add((chat_id, token))

    def unblock(self, chat_id: int, token: str | None = None) -> None:
        """Undo block() for the same (chat_id, token)."""
        self._blocked.discard((chat_id, token))

    def clear_failures(self) -> None:
        """Drop every injected failure and block."""
        self._failures.clear()
        self._blocked.clear()

    def _failure(
        self,
        error_code: int,
        description: str | None,
        retry_after: int | None,
        times: int | None,
        chat_id: int | None,
        method: str | None,
        token: str | None,
        migrate_to_chat_id: int | None,
    ) -> _Failure:
        canonical = None
        if method is not None:
            canonical = METHODS_BY_LOWER.get(method.lower())
            if canonical is None:
                raise ValueError(f"unknown Bot API method {method!r}")
        parameters: dict[str, Any] = {}
        if error_code == 429 and retry_after is None:
            retry_after = DEFAULT_RETRY_AFTER
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            description = (
                e.retry_after(retry_after)
                if error_code == 429 and retry_after is not None
                else e.DEFAULT_DESCRIPTIONS.get(error_code, "Internal Server Error")
            )
        return _Failure(error_code, description, parameters or None, times, chat_id, canonical, token)

    def _check_failures(self, token: str, method: str, params: dict[str, Any]) -> None:
        chat_id = params.get("chat_id")
        for failure in self._failures:
            if failure.matches(token, method, chat_id):
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                raise ApiError(failure.error_code, failure.description, failure.parameters)
        if method in SEND_METHODS and ((chat_id, None) in self._blocked or (chat_id, token) in self._blocked):
            raise ApiError(403, e.BOT_BLOCKED)

    # -- inspection ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every Bot API call received, in order, including failed ones."""
        return self._world.requests

    def calls(
        self, method: str | None = None, *, token: str | None = None, chat_id: int | None = None
    ) -> list[RecordedRequest]:
        """Recorded calls filtered by method (case-insensitive), bot and chat_id param."""
        wanted = None if method is None else METHODS_BY_LOWER.get(method.lower(), method)
        return [
            r
            for r in self._world.requests
            if (wanted is None or r.method == wanted)
            and (token is None or r.token == token)
            and (chat_id is None or r.params.get("chat_id") == chat_id)
        ]

    def sent(
        self, chat_id: int | None = None, method: str | None = None, token: str | None = None
    ) -> list[SentMessage]:
        """Messages bots created (send*, copyMessage, forwardMessage), oldest first, as returned at send time."""
        return _filter_messages(self._world.sent, chat_id, method, token)

    def edits(
        self, chat_id: int | None = None, method: str | None = None, token: str | None = None
    ) -> list[SentMessage]:
        """Successful editMessageText/Caption/ReplyMarkup results, oldest first."""
        return _filter_messages(self._world.edits, chat_id, method, token)

    def reactions(self, chat_id: int | None = None, token: str | None = None) -> list[Reaction]:
        """setMessageReaction calls that succeeded, oldest first."""
        return [
            r
            for r in self._world.reactions
            if (chat_id is None or r.chat_id == chat_id) and (token is None or r.token == token)
        ]

    def reaction(self, chat_id: int, message_id: int) -> tuple[str, ...]:
        """The reactions a message carries now (the last a bot set)."""
        found = [r.emojis for r in self._world.reactions if (r.chat_id, r.message_id) == (chat_id, message_id)]
        return found[-1] if found else ()

    @property
    def deletions(self) -> list[Deletion]:
        """Messages deleted via deleteMessage(s)."""
        return self._world.deletions

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        """answerCallbackQuery calls that succeeded."""
        return self._world.callback_answers

    @property
    def deliveries(self) -> list[Delivery]:
        """Every deliver() outcome."""
        return self._world.deliveries

    @property
    def remote_files(self) -> dict[str, bytes]:
        """Content served for http(s) URLs bots send as files (unregistered URLs yield empty files)."""
        return self._world.remote_files

    def webhook(self, token: str) -> WebhookState | None:
        """What setWebhook configured (url, secret_token, allowed_updates, …), or None."""
        return self._bot_state(token).webhook

    def commands(self, token: str, scope: Json | None = None, language_code: str | None = None) -> list[Json]:
        """The command list setMyCommands stored for a scope/language ([] if none)."""
        return copy.deepcopy(self._bot_state(token).commands.get(commands_key(scope, language_code), []))

    def pending_updates(self, token: str) -> list[Json]:
        """Updates queued for getUpdates and not yet confirmed."""
        return copy.deepcopy(self._bot_state(token).pending)

    def history(self, token: str, chat_id: int) -> list[Json]:
        """Current messages of a chat as the bot sees them (edits applied, deletions gone), oldest first."""
        return copy.deepcopy(self._world.history(self._bot_state(token).id, chat_id))

    def message(self, token: str, chat_id: int, message_id: int) -> Json | None:
        """One current message as the bot sees it, or None if unknown/deleted."""
        found = self._world.find(self._bot_state(token).id, chat_id, message_id)
        return copy.deepcopy(found)

    def topics(self, chat_id: int) -> dict[int, Topic]:
        """Forum topics of a supergroup by message_thread_id."""
        return self._world.chat(chat_id).topics

    def file(self, file_id: str) -> StoredFile | None:
        """A stored file by file_id (any bot)."""
        return self._world.files.get(file_id)

    def largest_photo(self, update_or_message: Json) -> StoredFile:
        """The stored file of the biggest size of a photo message/update (what a gateway should download)."""
        message = update_or_message.get("message", update_or_message)
        return self._world.files[message["photo"][-1]["file_id"]]

    # -- HTTP ------------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        token, name = request.match_info["token"], request.match_info["method"]
        try:
            raw, parts = await read_request(request)
        except ApiError as error:
            self._world.requests.append(
                RecordedRequest(
                    token,
                    METHODS_BY_LOWER.get(name.lower(), name),
                    {},
                    http_method=request.method,
                    status=error.error_code,
                    error=error.body(),
                )
            )
            return json_response(error.error_code, error.body())
        status, body = await self._execute(token, name, raw, parts, request.method)
        return json_response(status, body)

    async def _execute(
        self,
        token: str,
        name: str,
        raw: dict[str, Any],
        parts: dict[str, UploadedFile],
        http_method: str,
        *,
        via_webhook_reply: bool = False,
    ) -> tuple[int, Json]:
        canonical = METHODS_BY_LOWER.get(name.lower())
        record = RecordedRequest(
            token, canonical or name, {}, http_method=http_method, via_webhook_reply=via_webhook_reply
        )
        self._world.requests.append(record)
        try:
            bot = self._world.bots.get(token)
            if bot is None:
                raise ApiError(401, e.UNAUTHORIZED)
            if canonical is None:
                raise ApiError(404, e.METHOD_NOT_FOUND)
            record.params = decode_params(raw)
            record.files = files_by_param(record.params, parts)
            self._check_failures(token, canonical, record.params)
            result, description = await self._api.call(Call(bot, canonical, record.params, record.files, parts))
        except ApiError as error:
            record.status, record.error = error.error_code, error.body()
            return error.error_code, error.body()
        record.status, record.result = 200, copy.deepcopy(result)
        return 200, ok_body(result, description)

    async def _handle_file(self, request: web.Request) -> web.Response:
        bot = self._world.bots.get(request.match_info["token"])
        if bot is None:
            return json_response(401, ApiError(401, e.UNAUTHORIZED).body())
        stored = self._world.files_by_path.get(request.match_info["path"])
        if stored is None or stored.owner_bot_id != bot.id:
            return json_response(404, ApiError(404, e.NOT_FOUND).body())
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return json_response(404, ApiError(404, e.NOT_FOUND).body())


def _filter_messages(
    messages: list[SentMessage], chat_id: int | None, method: str | None, token: str | None
) -> list[SentMessage]:
    wanted = None if method is None else METHODS_BY_LOWER.get(method.lower(), method)
    return [
        m
        for m in messages
        if (chat_id is None or m.chat_id == chat_id)
        and (wanted is None or m.method == wanted)
        and (token is None or m.token == token)
    ]
