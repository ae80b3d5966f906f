"""Contact cards customers share as vCard files (WhatsApp sends them so), read into a SharedContact."""

from __future__ import annotations

from typing import Any

import vobject

from gateway.contacts import normalize_phone
from gateway.model import SharedContact

VCARD_TYPES = frozenset({"text/vcard", "text/x-vcard", "text/directory"})


def parse_vcard(data: bytes, default_region: str) -> SharedContact | None:
    """Name and phone numbers of the first card in a vCard file; None when no card can be read."""
    try:
        card = vobject.readOne(data.decode("utf-8", errors="replace"))
        name = _name(card)
        phones = [_phone(tel, default_region) for tel in card.contents.get("tel", [])]
    # vobject raises ParseError, StopIteration (empty input) and, on some broken cards,
    # AttributeError: a card a customer mangled must never fail the webhook.
    except Exception:  # noqa: BLE001
        return None
    unique = tuple(dict.fromkeys(p for p in phones if p))
    if not name and not unique:
        return None
    return SharedContact(name=name, phones=unique)


def _name(card: Any) -> str | None:
    formatted = card.contents.get("fn")
    if formatted and _text(formatted[0].value):
        return _text(formatted[0].value)
    structured = card.contents.get("n")
    if structured:
        n = structured[0].value
        parts = [_text(p) for p in (n.prefix, n.given, n.additional, n.family, n.suffix)]
        return " ".join(p for p in parts if p) or None
    return None


def _phone(tel: Any, default_region: str) -> str | None:
    """The number in E.164 when it is valid; else the WhatsApp id WhatsApp adds (`waid`); else as written."""
    raw = _text(tel.value)
    normalised = normalize_phone(raw, default_region) if raw else None
    if normalised:
        return normalised
    waid = tel.params.get("WAID", [""])[0]
    if waid.isascii() and waid.isdigit():
        return normalize_phone("+" + waid) or raw or None
    return raw or None


def _text(value: Any) -> str:
    # vobject gives a list where a field held several comma-separated values.
    if isinstance(value, list):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip() if value is not None else ""
