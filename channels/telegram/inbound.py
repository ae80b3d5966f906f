"""Normalising what a Telegram customer sends (messages, button presses) into the gateway's InboundMessage."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Final

from aiogram.types import CallbackQuery, Chat, Message, User

from channels.base import InboundMessage, Profile
from channels.telegram.content import content_of
from gateway.inputs import parse_int
from gateway.model import Content, IdentityRef, Kind

CHANNEL: Final = "telegram"


def message_ref(chat_id: int, message_id: int) -> str:
    """Our id of a Telegram message: unique per bot, because Telegram numbers messages per chat."""
    return f"{chat_id}:{message_id}"


def parse_message_ref(ref: str) -> tuple[int, int] | None:
    """(chat id, message id) of a `chat:message` id (or of an edit of one); None for other ids."""
    chat, _, rest = ref.partition(":")
    try:
        return parse_int(chat), parse_int(rest.split(":", 1)[0], low=0)
    except ValueError:
        return None


def profile_of(user: User) -> Profile:
    """What a Telegram user tells us about themselves."""
    return Profile(display_name=user.full_name, username=user.username, language=user.language_code)


def from_message(message: Message, account: str) -> InboundMessage:
    """A new or edited customer message; the sender must be set (callers skip anonymous posts)."""
    assert message.from_user is not None
    user, chat_id = message.from_user, message.chat.id
    reply = message.reply_to_message
    content = dataclasses.replace(
        content_of(message, CHANNEL, account),
        reply_to=message_ref(chat_id, reply.message_id) if reply is not None else None,
        quote=_quote(message),
    )
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
        sent_at=_edited_at(edit_date) or message.date,
    )


def _quote(message: Message) -> str | None:
    """What the customer quoted: the part they picked, else the text of the message they reply to."""
    if message.quote is not None:
        return message.quote.text
    reply = message.reply_to_message
    if reply is None:
        return None
    return reply.text or reply.caption or None


def _edited_at(seconds: int | None) -> datetime | None:
    """When a message was edited; None when not, or when the time given cannot be a real one."""
    try:
        return datetime.fromtimestamp(seconds, UTC) if seconds else None
    except (OverflowError, OSError, ValueError):
        return None


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


def _button_text(query: CallbackQuery) -> str | None:
    markup = getattr(query.message, "reply_markup", None)
    for row in getattr(markup, "inline_keyboard", None) or ():
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return None
