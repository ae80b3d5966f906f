"""How a conversation looks in the operator bot: the card, and each message tagged with #N."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import phonenumbers
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from channels.telegram.limits import TEXT_LIMIT, fits, split_text
from gateway.model import Author, Contact, Direction, Kind, Message, Thread
from gateway.splitter import utf16_len
from operators.texts import CATALOG, t
from operators.window import window_closed


def channel_name(lang: str, channel: str) -> str:
    """`Web chat`, `WhatsApp`, ... in the operator's language."""
    return t(lang, f"channel.{channel}") if f"channel.{channel}" in CATALOG["en"] else channel


def channel_label(lang: str, contact: Contact, thread: Thread) -> str:
    """`WhatsApp +1 415-555-2671`, `Telegram @annlee`, `Web chat`."""
    identity = contact.identity(thread.identity)
    label = channel_name(lang, thread.channel)
    if identity is None:
        return label
    if thread.channel == "whatsapp":
        return f"{label} {pretty_phone(identity.external_id)}"
    if thread.channel == "telegram" and identity.username:
        return f"{label} @{identity.username}"
    return label


def typed(lang: str, contact: Contact, value: str) -> str:
    """A phone or e-mail, marked as unverified when only the customer typed it (the widget)."""
    return t(lang, "card.unverified", value=value) if value in contact.unverified else value


def pretty_phone(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def card_text(
    lang: str,
    thread: Thread,
    contact: Contact,
    *,
    earlier: int,
    comment: str | None = None,
    comment_author: str | None = None,
    previous_number: int | None = None,
) -> str:
    """The card an operator gets with a new conversation: who, where from, and context."""
    lines = [
        t(
            lang,
            "card.title",
            number=thread.number,
            name=contact.display_name,
            channel=channel_label(lang, contact, thread),
        )
    ]
    lines.extend(t(lang, "card.email", value=typed(lang, contact, email)) for email in contact.emails)
    identity = contact.identity(thread.identity)
    in_title = identity.external_id if identity and thread.channel == "whatsapp" else None
    lines.extend(t(lang, "card.phone", value=pretty_phone(p)) for p in contact.phones if p != in_title)
    language = contact.language or (contact.visitor or {}).get("language")
    if language:
        lines.append(t(lang, "card.language", value=language))
    lines += visitor_lines(lang, contact)
    if earlier:
        lines.append(t(lang, "card.earlier", count=earlier))
    for note in contact.notes[-3:]:
        lines.append(t(lang, "card.notes", value=f"{note.text} ({note.author_name or '?'}, {note.created_at:%d %b})"))
    if contact.blocked:
        lines.append(t(lang, "card.blocked"))
    if window_closed(thread, contact):
        lines.append(t(lang, "card.window_closed", number=thread.number))
    if previous_number:
        lines.append(t(lang, "card.reopened", previous=previous_number))
    if comment:
        lines.append(t(lang, "card.comment", author=comment_author or "?", comment=comment))
    lines.append(t(lang, "card.hint", number=thread.number))
    return "\n".join(lines)


def visitor_lines(lang: str, contact: Contact, *, full: bool = False) -> list[str]:
    """What the widget told us: browser and OS, location, current page; with `full`, also the IP,
    referrer and the last pages visited."""
    visitor = contact.visitor or {}
    lines = []
    browser = " / ".join(v for v in (visitor.get("browser"), visitor.get("os")) if v)
    if browser:
        lines.append(t(lang, "card.browser", value=browser))
    if visitor.get("location"):
        lines.append(t(lang, "card.location", value=visitor["location"]))
    if full and visitor.get("ip"):
        lines.append(t(lang, "info.ip", value=visitor["ip"]))
    if full and visitor.get("referrer"):
        lines.append(t(lang, "info.referrer", value=visitor["referrer"]))
    if visitor.get("url"):
        lines.append(t(lang, "card.page", value=_page(visitor)))
    pages = [p for p in visitor.get("pages") or [] if isinstance(p, dict) and p.get("url")][-5:]
    if full and pages:
        lines.append(t(lang, "info.pages"))
        for page in reversed(pages):
            at = page.get("at")
            lines.append(t(lang, "info.page", page=_page(page), time=f"{at:%d.%m %H:%M}" if at else "?"))
    return lines


def _page(page: Mapping[str, Any]) -> str:
    return " — ".join(v for v in (page.get("title"), page["url"]) if v)


def card_keyboard(lang: str, number: int) -> InlineKeyboardMarkup:
    """Close, Transfer, History, Info, Block for one thread."""

    def button(action: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=t(lang, f"button.{action}"), callback_data=f"{action}:{number}")

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button("close"), button("transfer"), button("history")],
            [button("info"), button("block")],
        ]
    )


def message_text(lang: str, thread: Thread, message: Message, quote: str | None = None) -> str:
    """A stored message as one line of an operator chat, tagged with its thread number (after what it quotes)."""
    return f"#{thread.number} · {_quoted(lang, quote, message_body(lang, message))}"


def message_parts(
    lang: str, thread: Thread, message: Message, limit: int = TEXT_LIMIT, quote: str | None = None
) -> list[str]:
    """A stored message as operator-chat texts of at most `limit` UTF-16 code units, each tagged #N; `quote` is
    what it answers, when the chat has no copy of that to reply to."""
    return tagged_parts(thread.number, _quoted(lang, quote, message_body(lang, message)), limit)


def _quoted(lang: str, quote: str | None, body: str) -> str:
    return f"{t(lang, 'relay.quote', text=quote)}\n{body}" if quote else body


def tagged_parts(number: int, body: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`#N · body` in one text when it fits, else in parts tagged `#N (1/3) · ...`: each part says whose it is."""
    whole = f"#{number} · {body}"
    if fits(whole, limit):
        return [whole]
    # Room for the longest tag a part can get.
    parts = split_text(body, limit - utf16_len(f"#{number} (9999/9999) · "))
    return [f"#{number} ({i}/{len(parts)}) · {part}" for i, part in enumerate(parts, 1)]


def message_body(lang: str, message: Message) -> str:
    """What a stored message says, with who said it when that is not the customer."""
    body = _body(lang, message)
    if message.direction is Direction.INTERNAL:
        return t(lang, "relay.note", text=body)
    if message.direction is Direction.OUT:
        if message.author is Author.SYSTEM:
            return t(lang, "relay.system", text=body)
        if message.author_id is None:  # written through the REST API
            return t(lang, "relay.api", author=message.author_name or "API", text=body)
        return t(lang, "relay.operator", author=message.author_name or "?", text=body)
    if message.forwarded_from:
        return f"{t(lang, 'relay.forwarded', origin=message.forwarded_from)}\n{body}"
    return body


def _body(lang: str, message: Message) -> str:
    if message.notice is not None:
        return t(lang, f"notice.{message.notice.key}", **message.notice.values)
    content = message.content
    if content.kind is Kind.UNSUPPORTED:
        return t(lang, "relay.unsupported", what=content.text or "unsupported")
    if content.kind is Kind.STICKER:
        return t(lang, "relay.sticker", emoji=content.text)
    if content.kind is Kind.CONTACT and content.shared_contact:
        shared = content.shared_contact
        return t(lang, "relay.contact", name=shared.name or "", phones=", ".join(shared.phones)).strip()
    if content.kind is Kind.LOCATION and content.location:
        loc = content.location
        parts = [p for p in (loc.title, loc.address) if p] or [f"{loc.latitude:.5f}, {loc.longitude:.5f}"]
        return t(lang, "relay.location", text=" — ".join(parts))
    if content.media and not content.text:
        return t(lang, "relay.file", name=content.media[0].name or content.kind.value)
    return content.text
