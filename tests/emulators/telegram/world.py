"""The emulated Telegram: bots, users, chats, topics, messages and files, shared by server and builders."""

from __future__ import annotations

import asyncio
import base64
import itertools
import mimetypes
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import TERMINATED_BY_POLL, THREAD_NOT_FOUND, ApiError
from .records import (
    CallbackAnswer,
    Deletion,
    Delivery,
    Reaction,
    RecordedRequest,
    SentMessage,
    StoredFile,
    Topic,
    WebhookState,
)

Json = dict[str, Any]

FIRST_UPDATE_ID: Final = 815000001
DEFAULT_ICON_COLOR: Final = 7322096
# Update kinds delivered when allowed_updates was never set (api.html: all except these three).
NOT_DELIVERED_BY_DEFAULT: Final = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# kind -> (file_id prefix, file_unique_id prefix, folder, default extension, default MIME type)
FILE_KINDS: Final = {
    "photo": ("AgACAgIAAxkBAA", "AQAD", "photos", "jpg", "image/jpeg"),
    "document": ("BQACAgIAAxkBAA", "AgAD", "documents", "bin", "application/octet-stream"),
    "voice": ("AwACAgIAAxkBAA", "AgAD", "voice", "oga", "audio/ogg"),
    "audio": ("CQACAgIAAxkBAA", "AgAD", "music", "mp3", "audio/mpeg"),
    "video": ("BAACAgIAAxkBAA", "AgAD", "videos", "mp4", "video/mp4"),
    "video_note": ("DQACAgIAAxkBAA", "AgAD", "video_notes", "mp4", "video/mp4"),
    "animation": ("CgACAgIAAxkBAA", "AgAD", "animations", "mp4", "video/mp4"),
    "sticker": ("CAACAgIAAxkBAA", "AgAD", "stickers", "webp", "image/webp"),
    "thumbnail": ("AAMCAgADGQEAA", "AQAD", "thumbnails", "jpg", "image/jpeg"),
}
PHOTO_SIDES: Final = (90, 320, 800)
DEFAULT_PHOTO_SIZE: Final = (1280, 960)


@dataclass
class BotState:
    """One bot of the emulator: identity, update queue, webhook, commands and callback queries."""

    token: str
    user: Json
    webhook: WebhookState | None = None
    pending: list[Json] = field(default_factory=list)
    allowed_updates: list[str] | None = None
    next_update_id: int = FIRST_UPDATE_ID
    poll_generation: int = 0
    poll_abort: str = TERMINATED_BY_POLL
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    commands: dict[tuple[str, str], list[Json]] = field(default_factory=dict)
    callback_queries: dict[str, bool] = field(default_factory=dict)

    @property
    def id(self) -> int:
        """The bot's user id (the digits before ':' in its token)."""
        return int(self.user["id"])

    def sender(self) -> Json:
        """The bot as the `from` of its messages."""
        return {key: self.user[key] for key in ("id", "is_bot", "first_name", "username")}

    def notify(self) -> None:
        """Wake every getUpdates long poll of this bot."""
        self.changed.set()
        self.changed = asyncio.Event()

    def take_update_id(self) -> int:
        """Allocate the next update_id."""
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    def wants(self, update: Json) -> bool:
        """Whether the bot's allowed_updates lets this update through."""
        kind = update_kind(update)
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in NOT_DELIVERED_BY_DEFAULT


def update_kind(update: Json) -> str:
    """The update's type: its only key besides update_id."""
    return next((key for key in update if key != "update_id"), "")


@dataclass
class ChatState:
    """A chat and what lives in it."""

    chat: Json
    members: set[int] = field(default_factory=set)
    topics: dict[int, Topic] = field(default_factory=dict)
    next_message_id: int = 1

    @property
    def id(self) -> int:
        """Chat id."""
        return int(self.chat["id"])

    @property
    def type(self) -> str:
        """private, group, supergroup or channel."""
        return str(self.chat["type"])

    @property
    def is_forum(self) -> bool:
        """Whether the chat is a supergroup with topics."""
        return bool(self.chat.get("is_forum"))

    def take_message_id(self) -> int:
        """Allocate the next message_id in this chat."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


class World:
    """All emulated state plus the records tests inspect."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.bots: dict[str, BotState] = {}
        self.users: dict[int, Json] = {}
        self.hidden_forwards: set[int] = set()
        self.chats: dict[int, ChatState] = {}
        self.messages: dict[tuple[int, int, int], Json] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.photo_sets: dict[str, list[Json]] = {}
        self.media_objects: dict[str, Json] = {}
        self.remote_files: dict[str, bytes] = {}
        self.closing = False
        self._file_seq = itertools.count(1)
        self._callback_seq = itertools.count(182133749581237611, 7919)
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self.edits: list[SentMessage] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.deletions: list[Deletion] = []
        self.reactions: list[Reaction] = []
        self.deliveries: list[Delivery] = []

    def now(self) -> int:
        """Current unix time as Telegram reports it."""
        return int(self._clock())

    # -- users and chats -------------------------------------------------------------------------

    def user(self, user_id: int) -> Json:
        """A registered user's User object."""
        try:
            return dict(self.users[user_id])
        except KeyError:
            raise KeyError(f"user {user_id} is not registered; call emulator.user() first") from None

    def chat(self, chat_id: int) -> ChatState:
        """A registered chat."""
        try:
            return self.chats[chat_id]
        except KeyError:
            raise KeyError(f"chat {chat_id} is not registered") from None

    def resolve_chat(self, chat_id: int | str | None) -> ChatState | None:
        """Look a chat up by id or by '@username', as the server does for chat_id."""
        if isinstance(chat_id, int):
            return self.chats.get(chat_id)
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            name = chat_id[1:].lower()
            return next((c for c in self.chats.values() if str(c.chat.get("username", "")).lower() == name), None)
        return None

    # -- messages --------------------------------------------------------------------------------

    def _key(self, bot_id: int, chat_id: int, message_id: int) -> tuple[int, int, int]:
        # A private chat with a bot is seen by that bot only; group history is shared by all members.
        chat = self.chats.get(chat_id)
        scope = bot_id if chat is not None and chat.type == "private" else 0
        return scope, chat_id, message_id

    def store(self, bot_id: int, message: Json) -> None:
        """Save (or overwrite) a message as the bot sees it."""
        self.messages[self._key(bot_id, message["chat"]["id"], message["message_id"])] = message

    def find(self, bot_id: int, chat_id: int, message_id: int) -> Json | None:
        """A stored message visible to the bot, or None."""
        return self.messages.get(self._key(bot_id, chat_id, message_id))

    def remove(self, bot_id: int, chat_id: int, message_id: int) -> Json | None:
        """Delete a stored message; returns it, or None if it did not exist."""
        return self.messages.pop(self._key(bot_id, chat_id, message_id), None)

    def history(self, bot_id: int, chat_id: int) -> list[Json]:
        """Messages of a chat visible to the bot, oldest first."""
        scope = self._key(bot_id, chat_id, 0)[0]
        return [m for (s, c, _), m in sorted(self.messages.items()) if s == scope and c == chat_id]

    def compose(
        self,
        chat: ChatState,
        content: Json,
        *,
        sender: Json | None,
        thread_id: int | None = None,
        is_topic: bool = False,
        reply_to: Json | None = None,
        date: int | None = None,
    ) -> Json:
        """A new message with the next message_id; the caller stores it."""
        message: Json = {"message_id": chat.take_message_id()}
        if sender is not None:
            message["from"] = sender
        elif chat.type == "channel":
            message["sender_chat"] = dict(chat.chat)
        message["chat"] = dict(chat.chat)
        message["date"] = self.now() if date is None else date
        if thread_id is not None:
            message["message_thread_id"] = thread_id
        if reply_to is not None:
            message["reply_to_message"] = reply_snapshot(reply_to)
        message.update(content)
        if is_topic:
            message["is_topic_message"] = True
        return message

    def resolve_thread(
        self, bot_id: int, chat: ChatState, thread_id: int | None, reply_to: Json | None
    ) -> tuple[int | None, bool, Json | None]:
        """(message_thread_id, is_topic_message, topic starter message) for a new message.

        Raises ApiError(THREAD_NOT_FOUND) for an unknown thread, as the server does.
        """
        if thread_id is None and reply_to is not None:
            if reply_to.get("is_topic_message"):
                thread_id = reply_to["message_thread_id"]
            elif chat.type == "supergroup" and not chat.is_forum:
                # Replies in a plain supergroup form a thread without being a topic (tdlib#356).
                return reply_to.get("message_thread_id", reply_to["message_id"]), False, None
        if thread_id is None:
            return None, False, None
        if chat.is_forum:
            topic = chat.topics.get(thread_id)
            if topic is None or topic.deleted:
                raise ApiError.bad_request(THREAD_NOT_FOUND)
            return thread_id, True, self.find(bot_id, chat.id, thread_id)
        if chat.type == "supergroup" and self.find(bot_id, chat.id, thread_id) is not None:
            return thread_id, False, None
        raise ApiError.bad_request(THREAD_NOT_FOUND)

    def origin_of(self, message: Json) -> Json:
        """The MessageOrigin a forward of `message` carries."""
        if "forward_origin" in message:
            return dict(message["forward_origin"])
        chat = message["chat"]
        if chat["type"] == "channel":
            return {"type": "channel", "chat": dict(chat), "message_id": message["message_id"], "date": message["date"]}
        if "sender_chat" in message:
            return {"type": "chat", "sender_chat": dict(message["sender_chat"]), "date": message["date"]}
        sender = message["from"]
        if sender["id"] in self.hidden_forwards:
            name = " ".join(filter(None, (sender.get("first_name"), sender.get("last_name"))))
            return {"type": "hidden_user", "sender_user_name": name, "date": message["date"]}
        return {"type": "user", "sender_user": dict(sender), "date": message["date"]}

    def new_callback_id(self) -> str:
        """A fresh callback_query id."""
        return str(next(self._callback_seq))

    # -- files -----------------------------------------------------------------------------------

    def add_file(
        self,
        bot_id: int,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        declared_size: int | None = None,
        source_url: str | None = None,
    ) -> StoredFile:
        """Store a file for a bot and give it a file_id, file_unique_id and file_path."""
        id_prefix, unique_prefix, folder, extension, _ = FILE_KINDS[kind]
        seq = next(self._file_seq)
        if file_name and "." in file_name:
            extension = file_name.rsplit(".", 1)[1].lower()
        stored = StoredFile(
            file_id=id_prefix + _b64(struct.pack(">qI", bot_id, seq)),
            file_unique_id=unique_prefix + _b64(struct.pack(">I", seq)),
            kind=kind,
            owner_bot_id=bot_id,
            file_path=f"{folder}/file_{seq}.{extension}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
            declared_size=declared_size,
            source_url=source_url,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def file_for(self, bot_id: int, file_id: str) -> StoredFile | None:
        """A file by file_id, only if that bot owns it (file_ids do not transfer between bots)."""
        stored = self.files.get(file_id)
        return stored if stored is not None and stored.owner_bot_id == bot_id else None

    def photo_set(
        self,
        bot_id: int,
        data: bytes,
        *,
        size: tuple[int, int] | None = None,
        declared_size: int | None = None,
        source_url: str | None = None,
    ) -> list[Json]:
        """PhotoSize array, smallest first; only the largest (last) size holds the original bytes."""
        width, height = size or image_size(data) or DEFAULT_PHOTO_SIZE
        longest = max(width, height)
        dims = [
            (max(1, width * side // longest), max(1, height * side // longest))
            for side in PHOTO_SIDES
            if side < longest
        ]
        sizes: list[Json] = []
        for w, h in dims:
            # Smaller sizes are stand-ins (Telegram re-encodes them): distinct, shorter bytes.
            preview = data[: max(1, len(data) * w * h // (width * height))] if data else b""
            stored = self.add_file(bot_id, "photo", preview, mime_type="image/jpeg", source_url=source_url)
            sizes.append(photo_size(stored, w, h))
        original = self.add_file(
            bot_id, "photo", data, mime_type="image/jpeg", declared_size=declared_size, source_url=source_url
        )
        sizes.append(photo_size(original, width, height))
        for entry in sizes:
            self.photo_sets[entry["file_id"]] = sizes
        return sizes


def reply_snapshot(message: Json) -> Json:
    """A message as embedded in `reply_to_message` (Telegram nests only one level)."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def photo_size(stored: StoredFile, width: int, height: int) -> Json:
    """A PhotoSize object."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
        "width": width,
        "height": height,
    }


def media_object(stored: StoredFile, **fields: Any) -> Json:
    """A Document/Voice/Audio/Video/... object for a stored file plus kind-specific fields."""
    media: Json = {key: value for key, value in fields.items() if value is not None}
    media.update(file_id=stored.file_id, file_unique_id=stored.file_unique_id, file_size=stored.file_size)
    return media


def guess_mime(file_name: str | None, content_type: str | None, default: str) -> str:
    """MIME type from the part's Content-Type, else from the file name."""
    if content_type and content_type not in {"application/octet-stream", "text/plain"}:
        return content_type.split(";")[0].strip()
    guessed = mimetypes.guess_type(file_name or "")[0]
    return guessed or default


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, read from its header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in {0xC0, 0xC1, 0xC2}:
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
