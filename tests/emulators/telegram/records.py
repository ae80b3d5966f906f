"""Plain records the emulator keeps for tests to inspect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part as the client uploaded it."""

    part: str
    filename: str | None
    data: bytes
    content_type: str


@dataclass
class RecordedRequest:
    """One Bot API call as received, with what the emulator answered."""

    token: str
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)
    http_method: str = "POST"
    via_webhook_reply: bool = False
    status: int = 0
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the call succeeded."""
        return self.error is None and self.status == 200


@dataclass(frozen=True)
class SentMessage:
    """A message a bot created (send*, copyMessage, forwardMessage, or an edit result in `edits`)."""

    token: str
    method: str
    message: dict[str, Any]
    params: dict[str, Any]
    files: dict[str, UploadedFile]

    @property
    def chat_id(self) -> int:
        """Chat the message is in."""
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        """Id of the message in its chat."""
        return int(self.message["message_id"])

    @property
    def text(self) -> str | None:
        """Message text (after entity parsing), if any."""
        return self.message.get("text")

    @property
    def caption(self) -> str | None:
        """Media caption, if any."""
        return self.message.get("caption")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """Inline keyboard echoed back by the server, if any."""
        return self.message.get("reply_markup")

    @property
    def message_thread_id(self) -> int | None:
        """Forum topic / reply thread id, if any."""
        return self.message.get("message_thread_id")

    @property
    def reply_to_message_id(self) -> int | None:
        """Id of the message this one replies to, if any."""
        reply = self.message.get("reply_to_message")
        return None if reply is None else int(reply["message_id"])

    @property
    def file(self) -> UploadedFile | None:
        """The first uploaded file of the request, if the call uploaded one."""
        return next(iter(self.files.values()), None)


@dataclass(frozen=True)
class CallbackAnswer:
    """An answerCallbackQuery call."""

    token: str
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class Reaction:
    """The reactions a bot set on a message (setMessageReaction); empty when it took them away."""

    token: str
    chat_id: int
    message_id: int
    emojis: tuple[str, ...]


@dataclass(frozen=True)
class Deletion:
    """A message a bot deleted."""

    token: str
    chat_id: int
    message_id: int


@dataclass
class WebhookState:
    """What setWebhook configured for a bot."""

    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int
    ip_address: str | None
    has_custom_certificate: bool
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One `deliver()` call: status is the webhook's HTTP status, or 0 when queued for getUpdates."""

    token: str
    update: dict[str, Any]
    status: int
    secret_sent: str | None
    response_body: bytes = b""
    filtered: bool = False


@dataclass
class Topic:
    """A forum topic of a supergroup."""

    chat_id: int
    message_thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False
    deleted: bool = False

    def as_forum_topic(self) -> dict[str, Any]:
        """The ForumTopic object."""
        topic: dict[str, Any] = {
            "message_thread_id": self.message_thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            topic["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return topic


@dataclass
class StoredFile:
    """A file known to the emulator; `file_id` is valid only for the bot that owns it (as on Telegram)."""

    file_id: str
    file_unique_id: str
    kind: str
    owner_bot_id: int
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    declared_size: int | None = None
    source_url: str | None = None

    @property
    def file_size(self) -> int:
        """Size reported to clients (a declared size lets tests fake huge files without allocating them)."""
        return self.declared_size if self.declared_size is not None else len(self.data)

    def as_file(self) -> dict[str, Any]:
        """The File object returned by getFile."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }
