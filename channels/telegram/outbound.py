"""Turning an OutboundMessage into the Bot API calls that deliver it, in order."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any, Final

from aiogram.methods import (
    EditMessageCaption,
    EditMessageText,
    SendAudio,
    SendDocument,
    SendLocation,
    SendMessage,
    SendPhoto,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVoice,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
)

from channels.base import ChannelCapabilityError, OutboundMessage, SendError
from channels.telegram.inbound import parse_message_ref
from channels.telegram.limits import CALLBACK_DATA_LIMIT, CAPTION_LIMIT, fits, split_text
from gateway.csat import asked_rating, rating_payload
from gateway.model import Button, Kind, Media

SendMethod = type[TelegramMethod[Message]]
# method, and the parameter that carries the file
_BY_KIND: Final[dict[Kind, tuple[SendMethod, str]]] = {
    Kind.IMAGE: (SendPhoto, "photo"),
    Kind.FILE: (SendDocument, "document"),
    Kind.VOICE: (SendVoice, "voice"),
    Kind.AUDIO: (SendAudio, "audio"),
    Kind.VIDEO: (SendVideo, "video"),
    Kind.STICKER: (SendSticker, "sticker"),
}
_NO_CAPTION: Final = frozenset({SendSticker})


@dataclass
class Part:
    """One Bot API call of an outbound message; its file is resolved only when the part is sent."""

    method: SendMethod
    params: dict[str, Any] = field(default_factory=dict)
    media: Media | None = None
    file_field: str | None = None


def plan(message: OutboundMessage) -> list[Part]:
    """The calls for a message: files (the first captioned), the location, then text, split to fit."""
    chat_id = int(message.recipient.external_id)
    content = message.content
    text = content.text if content.text.strip() else ""
    parts: list[Part] = []
    captioned = False
    for media in content.media:
        method, file_field = _media_method(content.kind, media)
        params: dict[str, Any] = {"chat_id": chat_id}
        if text and not captioned and fits(text, CAPTION_LIMIT) and method not in _NO_CAPTION:
            params["caption"] = text
            captioned = True
        parts.append(Part(method, params, media, file_field))
    if content.location is not None:
        loc = content.location
        coordinates = {"chat_id": chat_id, "latitude": loc.latitude, "longitude": loc.longitude}
        if loc.title and loc.address:
            parts.append(Part(SendVenue, coordinates | {"title": loc.title, "address": loc.address}))
        else:
            parts.append(Part(SendLocation, coordinates))
    if text and not captioned:
        parts.extend(Part(SendMessage, {"chat_id": chat_id, "text": chunk}) for chunk in split_text(text))
    if not parts:
        what = "a WhatsApp template" if content.template is not None else "an empty message"
        raise ChannelCapabilityError(f"Telegram cannot deliver {what}")
    target = parse_message_ref(content.reply_to) if content.reply_to else None
    if target is not None and target[0] == chat_id:
        parts[0].params["reply_parameters"] = ReplyParameters(message_id=target[1], allow_sending_without_reply=True)
    if content.buttons:
        parts[-1].params["reply_markup"] = keyboard(content.buttons)
    if (rated := asked_rating(content.ask)) is not None:
        # 1 to 5 from left to right, in one row; each press names the thread it rates.
        row = [InlineKeyboardButton(text=str(s), callback_data=rating_payload(rated, s)) for s in range(1, 6)]
        parts[-1].params["reply_markup"] = InlineKeyboardMarkup(inline_keyboard=[row])
    elif content.ask == "comment":
        parts[-1].params["reply_markup"] = ForceReply(force_reply=True)
    return parts


def edit_call(message: OutboundMessage, message_id: int) -> EditMessageText | EditMessageCaption:
    """The call that changes a delivered message to the message's content: its text, or its file's caption.

    Only a message that went as one Bot API call can be changed; the buttons stay as they were sent.
    """
    parts = plan(message)
    if len(parts) != 1:
        raise ChannelCapabilityError(
            "Telegram got this message in several parts (a caption over 1,024 or a text over 4,096 characters, or a "
            "file with a place); it cannot be changed in one edit"
        )
    [part] = parts
    common: dict[str, Any] = {
        "chat_id": part.params["chat_id"],
        "message_id": message_id,
        "reply_markup": part.params.get("reply_markup"),
    }
    if part.method is SendMessage:
        return EditMessageText(text=part.params["text"], **common)
    if part.media is not None and part.method not in _NO_CAPTION:
        return EditMessageCaption(caption=part.params.get("caption", ""), **common)
    raise ChannelCapabilityError("Telegram cannot change a sticker, a place or a contact once it is sent")


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup:
    """One inline button per row; a press comes back as the button's payload."""
    for button in buttons:
        if not 1 <= len(button.payload.encode()) <= CALLBACK_DATA_LIMIT:
            raise SendError(
                f"the payload of button {button.text!r} must be 1-64 bytes for Telegram",
                code="bad_request",
                permanent=True,
            )
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=b.text, callback_data=b.payload)] for b in buttons]
    )


def upload_name(media: Media, file_field: str) -> str:
    """The file name an upload goes out with (Telegram shows it for documents)."""
    if media.name:
        return media.name
    extension = mimetypes.guess_extension(media.mime_type or "") or ""
    return f"{file_field}{extension}"


def _media_method(kind: Kind, media: Media) -> tuple[SendMethod, str]:
    if kind in _BY_KIND:
        return _BY_KIND[kind]
    mime = (media.mime_type or "").lower()
    if mime in ("image/jpeg", "image/png"):
        return _BY_KIND[Kind.IMAGE]
    if mime.startswith("video/"):
        return _BY_KIND[Kind.VIDEO]
    if mime.startswith("audio/"):
        return _BY_KIND[Kind.AUDIO]
    return _BY_KIND[Kind.FILE]
