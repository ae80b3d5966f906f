"""Bot API method dispatch plus webhook, updates, callbacks, files, commands, chats and forum topics."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlparse

from . import errors as e
from .call import Call, Described
from .errors import ApiError
from .messages import MessageMethods
from .records import CallbackAnswer, Topic, WebhookState
from .world import DEFAULT_ICON_COLOR, ChatState, Json, World

METHOD_NAMES: Final = (
    "getMe",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "getUpdates",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendVoice",
    "sendAudio",
    "sendVideo",
    "sendVideoNote",
    "sendAnimation",
    "sendSticker",
    "sendLocation",
    "sendVenue",
    "sendContact",
    "sendChatAction",
    "sendMediaGroup",
    "copyMessage",
    "forwardMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "deleteMessages",
    "setMessageReaction",
    "answerCallbackQuery",
    "getFile",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "createForumTopic",
    "closeForumTopic",
    "reopenForumTopic",
    "editForumTopic",
    "deleteForumTopic",
    "getChat",
)
METHODS_BY_LOWER: Final = MappingProxyType({name.lower(): name for name in METHOD_NAMES})
# Calls that put something into a chat; these are refused with 403 once the user blocked the bot.
SEND_METHODS: Final = frozenset(n for n in METHOD_NAMES if n.startswith("send")) | {"copyMessage", "forwardMessage"}
DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024
_SECRET: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_COMMAND: Final = re.compile(r"^[a-z0-9_]{1,32}$")


class BotApi(MessageMethods):
    """Implements the Bot API methods against the shared World."""

    def __init__(self, world: World) -> None:
        self._world = world

    async def call(self, call: Call) -> tuple[Any, str | None]:
        """Run a method; returns (result, description)."""
        handler = getattr(self, _snake(call.method))
        result = handler(call)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, Described):
            return result.result, result.description
        return result, None

    # -- bot, webhook, updates -------------------------------------------------------------------

    def get_me(self, call: Call) -> Json:
        return dict(call.bot.user)

    def set_webhook(self, call: Call) -> Described:
        bot = call.bot
        url = str(call.get("url", ""))
        if not url:
            return self.delete_webhook(call)
        parsed = urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ApiError.bad_request(e.WEBHOOK_URL_INVALID)
        secret = call.get("secret_token")
        if secret is not None:
            if len(secret) > 256:
                raise ApiError.bad_request(e.SECRET_TOO_LONG)
            if not _SECRET.match(secret):
                raise ApiError.bad_request(e.SECRET_INVALID)
        allowed = call.get("allowed_updates")
        if allowed is not None:
            bot.allowed_updates = list(allowed) or None
        webhook = WebhookState(
            url=url,
            secret_token=secret,
            allowed_updates=bot.allowed_updates,
            max_connections=min(max(int(call.get("max_connections", 40)), 1), 100),
            ip_address=call.get("ip_address"),
            has_custom_certificate="certificate" in call.files or call.get("certificate") is not None,
        )
        if call.flag("drop_pending_updates"):
            bot.pending.clear()
        unchanged = bot.webhook is not None and (
            bot.webhook.url,
            bot.webhook.secret_token,
            bot.webhook.max_connections,
        ) == (webhook.url, webhook.secret_token, webhook.max_connections)
        bot.webhook = webhook
        bot.poll_abort = e.TERMINATED_BY_WEBHOOK
        bot.poll_generation += 1
        bot.notify()
        return Described(True, "Webhook is already set" if unchanged else "Webhook was set")

    def delete_webhook(self, call: Call) -> Described:
        bot = call.bot
        if call.flag("drop_pending_updates"):
            bot.pending.clear()
        existed, bot.webhook = bot.webhook is not None, None
        return Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def get_webhook_info(self, call: Call) -> Json:
        bot, webhook = call.bot, call.bot.webhook
        info: Json = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": bool(webhook and webhook.has_custom_certificate),
            "pending_update_count": len(bot.pending),
        }
        if webhook is not None:
            if webhook.ip_address:
                info["ip_address"] = webhook.ip_address
            if webhook.last_error_date is not None:
                info["last_error_date"] = webhook.last_error_date
                info["last_error_message"] = webhook.last_error_message
            info["max_connections"] = webhook.max_connections
            if bot.allowed_updates:
                info["allowed_updates"] = list(bot.allowed_updates)
        return info

    async def get_updates(self, call: Call) -> list[Json]:
        bot = call.bot
        if bot.webhook is not None:
            raise ApiError(409, e.WEBHOOK_ACTIVE)
        offset = int(call.get("offset", 0))
        limit = min(max(int(call.get("limit", 100)), 1), 100)
        timeout = max(int(call.get("timeout", 0)), 0)
        allowed = call.get("allowed_updates")
        if allowed is not None:
            bot.allowed_updates = list(allowed) or None
        if offset > 0:
            bot.pending[:] = [u for u in bot.pending if u["update_id"] >= offset]
        elif offset < 0:
            bot.pending[:] = bot.pending[offset:]
        # A newer poll terminates the older one with 409, as on the real server.
        bot.poll_generation += 1
        bot.poll_abort = e.TERMINATED_BY_POLL
        generation = bot.poll_generation
        bot.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != bot.poll_generation:
                raise ApiError(409, bot.poll_abort)
            if bot.pending or self._world.closing:
                return copy.deepcopy(bot.pending[:limit])
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            changed = bot.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    # -- callbacks, files, commands, chats -------------------------------------------------------

    def answer_callback_query(self, call: Call) -> bool:
        query_id = str(call.require("callback_query_id"))
        if call.bot.callback_queries.get(query_id) is not False:
            raise ApiError.bad_request(e.QUERY_INVALID)
        call.bot.callback_queries[query_id] = True
        self._world.callback_answers.append(
            CallbackAnswer(
                token=call.bot.token,
                callback_query_id=query_id,
                text=call.get("text"),
                show_alert=call.flag("show_alert"),
                url=call.get("url"),
                cache_time=call.get("cache_time"),
            )
        )
        return True

    def get_file(self, call: Call) -> Json:
        stored = self._world.file_for(call.bot.id, str(call.require("file_id")))
        if stored is None:
            raise ApiError.bad_request(e.GET_FILE_INVALID)
        if stored.file_size > DOWNLOAD_LIMIT:
            raise ApiError.bad_request(e.FILE_TOO_BIG)
        return stored.as_file()

    def set_my_commands(self, call: Call) -> bool:
        commands = call.require("commands")
        if not isinstance(commands, list):
            raise ApiError.bad_request("Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError.bad_request(e.COMMANDS_TOO_MUCH)
        cleaned = []
        for item in commands:
            command, description = str(item.get("command", "")), str(item.get("description", ""))
            if not _COMMAND.match(command):
                raise ApiError.bad_request(e.COMMAND_INVALID)
            if not description.strip():
                raise ApiError.bad_request(e.COMMAND_DESCRIPTION_EMPTY)
            cleaned.append({"command": command, "description": description})
        key = commands_key(call.get("scope"), call.get("language_code"))
        if cleaned:
            call.bot.commands[key] = cleaned
        else:
            call.bot.commands.pop(key, None)
        return True

    def get_my_commands(self, call: Call) -> list[Json]:
        key = commands_key(call.get("scope"), call.get("language_code"))
        return copy.deepcopy(call.bot.commands.get(key, []))

    def delete_my_commands(self, call: Call) -> bool:
        call.bot.commands.pop(commands_key(call.get("scope"), call.get("language_code")), None)
        return True

    def get_chat(self, call: Call) -> Json:
        chat = self._chat(call)
        info = dict(chat.chat)
        info.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        )
        return info

    # -- forum topics ----------------------------------------------------------------------------

    def create_forum_topic(self, call: Call) -> Json:
        chat = self._forum(call)
        name = str(call.require("name"))
        if len(name) > 128:
            raise ApiError.bad_request("Bad Request: TOPIC_TITLE_TOO_LONG")
        topic = create_topic(
            self._world,
            chat,
            name,
            icon_color=int(call.get("icon_color", DEFAULT_ICON_COLOR)),
            icon_custom_emoji_id=call.get("icon_custom_emoji_id"),
            sender=call.bot.sender(),
        )
        return topic.as_forum_topic()

    def close_forum_topic(self, call: Call) -> bool:
        chat, topic = self._topic(call)
        if topic.closed:
            raise ApiError.bad_request(e.TOPIC_NOT_MODIFIED)
        topic.closed = True
        self._topic_service(call, chat, topic, {"forum_topic_closed": {}})
        return True

    def reopen_forum_topic(self, call: Call) -> bool:
        chat, topic = self._topic(call)
        if not topic.closed:
            raise ApiError.bad_request(e.TOPIC_NOT_MODIFIED)
        topic.closed = False
        self._topic_service(call, chat, topic, {"forum_topic_reopened": {}})
        return True

    def edit_forum_topic(self, call: Call) -> bool:
        chat, topic = self._topic(call)
        edited: Json = {}
        name = call.get("name")
        if name is not None and name != topic.name:
            topic.name = edited["name"] = str(name)
        emoji = call.params.get("icon_custom_emoji_id")
        if emoji is not None and (emoji or None) != topic.icon_custom_emoji_id:
            topic.icon_custom_emoji_id = emoji or None
            edited["icon_custom_emoji_id"] = emoji
        if not edited:
            raise ApiError.bad_request(e.TOPIC_NOT_MODIFIED)
        self._topic_service(call, chat, topic, {"forum_topic_edited": edited})
        return True

    def delete_forum_topic(self, call: Call) -> bool:
        chat, topic = self._topic(call)
        topic.deleted = True
        for message in self._world.history(call.bot.id, chat.id):
            if message.get("message_thread_id") == topic.message_thread_id:
                self._world.remove(call.bot.id, chat.id, message["message_id"])
        return True

    # -- helpers ---------------------------------------------------------------------------------

    def _forum(self, call: Call) -> ChatState:
        chat = self._chat(call)
        if not chat.is_forum:
            raise ApiError.bad_request(e.NOT_A_FORUM)
        return chat

    def _topic(self, call: Call) -> tuple[ChatState, Topic]:
        chat = self._forum(call)
        topic = chat.topics.get(int(call.require("message_thread_id")))
        if topic is None or topic.deleted:
            raise ApiError.bad_request(e.TOPIC_ID_INVALID)
        return chat, topic

    def _topic_service(self, call: Call, chat: ChatState, topic: Topic, content: Json) -> None:
        starter = self._world.find(call.bot.id, chat.id, topic.message_thread_id)
        message = self._world.compose(
            chat, content, sender=call.bot.sender(), thread_id=topic.message_thread_id, is_topic=True, reply_to=starter
        )
        self._world.store(call.bot.id, message)


def create_topic(
    world: World, chat: ChatState, name: str, *, icon_color: int, icon_custom_emoji_id: str | None, sender: Json
) -> Topic:
    """Open a forum topic: its id is the id of the `forum_topic_created` service message."""
    created: Json = {"name": name, "icon_color": icon_color}
    if icon_custom_emoji_id:
        created["icon_custom_emoji_id"] = icon_custom_emoji_id
    message = world.compose(chat, {"forum_topic_created": created}, sender=sender)
    message["message_thread_id"] = message["message_id"]
    message["is_topic_message"] = True
    world.store(0, message)
    topic = Topic(chat.id, message["message_id"], name, icon_color, icon_custom_emoji_id)
    chat.topics[topic.message_thread_id] = topic
    return topic


def commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
    """Key under which setMyCommands stores a list: (scope JSON, language code)."""
    scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
