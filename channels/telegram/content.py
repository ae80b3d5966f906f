"""What a Telegram message carries, as gateway Content: one conversion for customers and operators alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiogram.types import Message

from gateway.contacts import normalize_phone
from gateway.inputs import file_name, media_type
from gateway.model import Content, Kind, Location, Media, SharedContact

# Fields the Bot API still sends beside `forward_origin`; aiogram keeps them as extras.
_LEGACY_FIELDS: Final = frozenset(
    {
        "forward_from",
        "forward_from_chat",
        "forward_from_message_id",
        "forward_signature",
        "forward_sender_name",
        "forward_date",
    }
)


def content_of(message: Message, source: str, account: str | None) -> Content:
    """What a Telegram message carries, as gateway content; files keep the source and bot that can fetch them.

    Entities (links, bold, mentions) are formatting of the text itself: the text alone is the message.
    A caption is the text of a file. Anything we cannot represent is UNSUPPORTED, named by its Bot API type.
    """
    for field, convert in _CONVERTERS:
        value = getattr(message, field, None)
        if value:
            content = convert(value, _Files(source, account))
            if message.caption and not content.text:
                content = dataclasses.replace(content, text=message.caption)
            return content
    return Content(Kind.UNSUPPORTED, text=f"[unsupported: {_type_name(message)}]")


@dataclass(frozen=True)
class _Files:
    """Where files of this message can be fetched from again."""

    source: str
    account: str | None


def _media(value: Any, files: _Files, mime_type: str | None = None, name: str | None = None) -> Media:
    return Media(
        source=files.source,
        account=files.account,
        ref=value.file_id,
        mime_type=media_type(getattr(value, "mime_type", None)) or mime_type,
        size=getattr(value, "file_size", None),
        name=file_name(getattr(value, "file_name", None)) or name,
        duration=getattr(value, "duration", None),
    )


def _text(value: str, files: _Files) -> Content:
    return Content(Kind.TEXT, text=value)


def _photo(sizes: list[Any], files: _Files) -> Content:
    largest = max(sizes, key=lambda s: (s.width * s.height, s.file_size or 0))
    return Content(Kind.IMAGE, media=(_media(largest, files, "image/jpeg"),))


def _file(kind: Kind, mime_type: str | None = None) -> Callable[[Any, _Files], Content]:
    def convert(value: Any, files: _Files) -> Content:
        return Content(kind, media=(_media(value, files, mime_type),))

    return convert


def _sticker(sticker: Any, files: _Files) -> Content:
    mime = "video/webm" if sticker.is_video else "application/x-tgsticker" if sticker.is_animated else "image/webp"
    return Content(Kind.STICKER, text=sticker.emoji or "", media=(_media(sticker, files, mime),))


def _venue(venue: Any, files: _Files) -> Content:
    return Content(
        Kind.LOCATION,
        location=Location(venue.location.latitude, venue.location.longitude, title=venue.title, address=venue.address),
    )


def _location(location: Any, files: _Files) -> Content:
    return Content(Kind.LOCATION, location=Location(location.latitude, location.longitude))


def _contact(contact: Any, files: _Files) -> Content:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or None
    phones = (contact_phone(contact.phone_number),) if contact.phone_number else ()
    user_id = str(contact.user_id) if contact.user_id is not None else None
    return Content(Kind.CONTACT, shared_contact=SharedContact(name=name, phones=phones, user_id=user_id))


# First match wins: a venue also carries `location`, an animation also carries `document`.
_CONVERTERS: Final[tuple[tuple[str, Callable[[Any, _Files], Content]], ...]] = (
    ("text", _text),
    ("photo", _photo),
    ("animation", _file(Kind.VIDEO, "video/mp4")),
    ("document", _file(Kind.FILE)),
    ("voice", _file(Kind.VOICE, "audio/ogg")),
    ("audio", _file(Kind.AUDIO, "audio/mpeg")),
    ("video", _file(Kind.VIDEO, "video/mp4")),
    ("video_note", _file(Kind.VIDEO, "video/mp4")),
    ("sticker", _sticker),
    ("venue", _venue),
    ("location", _location),
    ("contact", _contact),
)


def _type_name(message: Message) -> str:
    """The Bot API name of what the message carries (poll, dice, a field newer than aiogram, ...)."""
    content_type = message.content_type
    known = str(getattr(content_type, "value", content_type))
    if known != "unknown":
        return known
    extras = [k for k in (message.model_extra or {}) if k not in _LEGACY_FIELDS]
    return extras[0] if extras else "unknown"


def contact_phone(raw: str) -> str:
    """A phone from a contact share in E.164; Telegram's numbers are international, '+' or not."""
    digits = "".join(c for c in raw if c in "0123456789")
    plus = "+" + digits if digits else raw.strip()
    return normalize_phone(plus) or plus
