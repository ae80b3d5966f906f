"""Normalising what identifies a person: phone numbers (E.164) and e-mail addresses."""

from __future__ import annotations

import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s().\-/]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_phone(raw: str, default_region: str = "US") -> str | None:
    """The E.164 form of a phone number, or None when it is not a valid number.

    Accepts '+' or '00' international forms, national forms in the default region, and
    international digits without '+' (Telegram contact shares from some clients).
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates = [(text, None if text.startswith("+") else default_region)]
    digits = _SEPARATORS.sub("", text)
    if not text.startswith("+") and digits.isdigit():
        candidates.append(("+" + digits, None))
    for number, region in candidates:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalize_email(raw: str) -> str | None:
    """A trimmed, lower-cased e-mail address with an IDNA domain, or None when malformed."""
    text = raw.strip().lower()
    if not _EMAIL.match(text):
        return None
    local, domain = text.rsplit("@", 1)
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return f"{local}@{domain}"
