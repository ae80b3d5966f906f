"""Normalising what a Telegram customer sends into the gateway's InboundMessage."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from aiogram.types import CallbackQuery, Chat, Message, User

from channels.base import InboundMessage, Profile
from gateway.contacts import normalize_phone
from gateway.model import Content, IdentityRef, Kind, Location, Media, SharedContact

CHANNEL: Final = "telegram"
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


def message_ref(chat_id: int, message_id: int) -> str:
    """Our id of a Telegram message: unique per bot, because Telegram numbers messages per chat."""
    return f"{chat_id}:{message_id}"


def parse_message_ref(ref: str) -> tuple[int, int] | None:
    """(chat id, message id) of a `chat:message` id (or of an edit of one); None for other ids."""
    chat, _, rest = ref.partition(":")
    message = rest.split(":", 1)[0]
    if not message.isdigit() or not chat.lstrip("-").isdigit():
        return None
    return int(chat), int(message)


def profile_of(user: User) -> Profile:
    """What a Telegram user tells us about themselves."""
    return Profile(display_name=user.full_name, username=user.username, language=user.language_code)


def from_message(message: Message, account: str) -> InboundMessage:
    """A new or edited customer message; the sender must be set (callers skip anonymous posts)."""
    assert message.from_user is not None
    user, chat_id = message.from_user, message.chat.id
    reply = message.reply_to_message
    content = dataclasses.replace(
        _content(message, account),
        reply_to=message_ref(chat_id, reply.message_id) if reply is not None else None,
    )
    if message.caption and not content.text:
        content = dataclasses.replace(content, text=message.caption)
    profile = profile_of(user)
    contact = message.contact
    if contact is not None and contact.user_id == user.id and content.shared_contact and content.shared_contact.phones:
        # The user shared their own number: Telegram has verified it.
        profile = dataclasses.replace(profile, phone=content.shared_contact.phones[0], phone_verified=True)
    own_id = message_ref(chat_id, message.message_id)
    edit_date = message.edit_date  # unix seconds (aiogram parses only `date`)
    return InboundMessage(
        sender=IdentityRef(CHANNEL, account, str(user.id)),
        message_id=f"{own_id}:edit:{edit_date}" if edit_date else own_id,
        edit_of=own_id if edit_date else None,
        content=content,
        profile=profile,
        forwarded_from=forward_origin(message),
        sent_at=datetime.fromtimestamp(edit_date, UTC) if edit_date else message.date,
    )


def from_callback(query: CallbackQuery, account: str) -> InboundMessage:
    """A press on one of our inline buttons: the button's text, with its payload."""
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    pressed = _button_text(query)
    return InboundMessage(
        sender=IdentityRef(CHANNEL, account, str(query.from_user.id)),
        message_id=f"{chat_id}:cb:{query.id}",
        content=Content(
            Kind.TEXT,
            text=pressed or query.data or "",
            reply_to=message_ref(chat_id, query.message.message_id) if query.message is not None else None,
        ),
        payload=query.data,
        profile=profile_of(query.from_user),
    )


def forward_origin(message: Message) -> str | None:
    """Who a forwarded message came from, readably: "Bob Smith", "@channel", "hidden user"."""
    origin = message.forward_origin
    if origin is None:
        return None
    sender_user = getattr(origin, "sender_user", None)
    if sender_user is not None:
        return sender_user.full_name or (f"@{sender_user.username}" if sender_user.username else "a user")
    if origin.type == "hidden_user":
        return getattr(origin, "sender_user_name", None) or "hidden user"
    chat: Chat | None = getattr(origin, "chat", None) or getattr(origin, "sender_chat", None)
    if chat is not None:
        return f"@{chat.username}" if chat.username else (chat.title or "a chat")
    return "unknown origin"


def contact_phone(raw: str) -> str:
    """A phone from a contact share in E.164; Telegram's numbers are international, '+' or not."""
    digits = "".join(c for c in raw if c.isdigit())
    plus = "+" + digits if digits else raw.strip()
    return normalize_phone(plus) or plus


# -- content ---------------------------------------------------------------------------------


def _content(message: Message, account: str) -> Content:
    for field, convert in _CONVERTERS:
        value = getattr(message, field, None)
        if value:
            return convert(value, account)
    return Content(Kind.UNSUPPORTED, text=f"[unsupported: {_type_name(message)}]")


def _media(value: Any, account: str, mime_type: str | None = None, name: str | None = None) -> Media:
    return Media(
        source=CHANNEL,
        account=account,
        ref=value.file_id,
        mime_type=getattr(value, "mime_type", None) or mime_type,
        size=getattr(value, "file_size", None),
        name=getattr(value, "file_name", None) or name,
        duration=getattr(value, "duration", None),
    )


def _text(value: str, account: str) -> Content:
    # Entities (links, bold, mentions) are formatting of this very text: the text alone is the message.
    return Content(Kind.TEXT, text=value)


def _photo(sizes: list[Any], account: str) -> Content:
    largest = max(sizes, key=lambda s: (s.width * s.height, s.file_size or 0))
    return Content(Kind.IMAGE, media=(_media(largest, account, "image/jpeg"),))


def _file(kind: Kind, mime_type: str | None = None) -> Callable[[Any, str], Content]:
    def convert(value: Any, account: str) -> Content:
        return Content(kind, media=(_media(value, account, mime_type),))

    return convert


def _sticker(sticker: Any, account: str) -> Content:
    mime = "video/webm" if sticker.is_video else "application/x-tgsticker" if sticker.is_animated else "image/webp"
    return Content(Kind.STICKER, text=sticker.emoji or "", media=(_media(sticker, account, mime),))


def _venue(venue: Any, account: str) -> Content:
    return Content(
        Kind.LOCATION,
        location=Location(venue.location.latitude, venue.location.longitude, title=venue.title, address=venue.address),
    )


def _location(location: Any, account: str) -> Content:
    return Content(Kind.LOCATION, location=Location(location.latitude, location.longitude))


def _contact(contact: Any, account: str) -> Content:
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or None
    phones = (contact_phone(contact.phone_number),) if contact.phone_number else ()
    user_id = str(contact.user_id) if contact.user_id is not None else None
    return Content(Kind.CONTACT, shared_contact=SharedContact(name=name, phones=phones, user_id=user_id))


# First match wins: a venue also carries `location`, an animation also carries `document`.
_CONVERTERS: Final[tuple[tuple[str, Callable[[Any, str], Content]], ...]] = (
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


def _button_text(query: CallbackQuery) -> str | None:
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", None) or ():
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return None
