"""Who is who: normalised phones (E.164) and e-mails, and how alike two cards' names are."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from rapidfuzz import fuzz, utils

from gateway.model import Contact

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
    if not text.startswith("+") and digits.isascii() and digits.isdigit():
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


def person_name(contact: Contact) -> str | None:
    """The name a person gave or a channel showed, if any (not a phone or username)."""
    return contact.name or next((i.display_name for i in contact.identities if i.display_name), None)


def name_similarity(a: Contact, b: Contact) -> int | None:
    """How alike two cards' names are, 0-100 (word order and case ignored); None when one has no name."""
    first, second = person_name(a), person_name(b)
    if not first or not second:
        return None
    first, second = _name_key(first), _name_key(second)
    # token_sort: "Lee, Ann" is "Ann Lee"; WRatio: "Ann" (a profile's first name only) is close to "Ann Lee".
    return round(max(fuzz.token_sort_ratio(first, second), fuzz.WRatio(first, second)))


def _name_key(name: str) -> str:
    """Lower case, no punctuation, no accents: "María-José" and "maria jose" compare equal."""
    decomposed = unicodedata.normalize("NFKD", name)
    return utils.default_process("".join(c for c in decomposed if not unicodedata.combining(c)))
