"""Texts too long for a platform, cut into parts it accepts: at a paragraph, line or word boundary when there is
one, never inside a surrogate pair or a formatting entity that fits, in order, losing only whitespace at the cuts.

Lengths are counted in UTF-16 code units, as Telegram counts them (an emoji outside the BMP counts two); a limit
in code units is never more than the same limit in characters, so it is safe for WhatsApp's 1,600 too.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Where a cut may fall, best first: after a blank line, a line break, then any whitespace.
_BOUNDARIES = ("\n\n", "\n")
# Characters that belong to the one before them: a cut just before one would split a visible character.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


@dataclass(frozen=True)
class Entity:
    """A formatting entity (bold, a link, ...) over a text, in UTF-16 code units, as the Bot API has them."""

    offset: int
    length: int
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class Part:
    """One part of a cut text, with its entities re-based onto it."""

    text: str
    entities: tuple[Entity, ...] = ()


def utf16_len(text: str) -> int:
    """A text's length as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split(text: str, limit: int, entities: Sequence[Entity] = ()) -> list[Part]:
    """`text` in parts of at most `limit` UTF-16 code units; blank parts are dropped (a blank text gives none)."""
    if limit < 2:
        raise ValueError("a part holds at least 2 code units (a surrogate pair)")
    units = _offsets(text)
    ordered = sorted(entities, key=lambda e: (e.offset, e.length))
    parts: list[Part] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = _fit(units, start, limit)
        cut = len(text) if end == len(text) else _cut(text, units, start, end, limit, ordered)
        stop = cut
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop > start:
            parts.append(Part(text[start:stop], _rebase(ordered, units[start], units[stop])))
        start = _skip_space(text, cut)
    return parts


def _offsets(text: str) -> list[int]:
    """UTF-16 offset of every character position (one more than there are characters)."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


def _fit(units: list[int], start: int, limit: int) -> int:
    """The furthest character position whose text from `start` is within `limit` code units."""
    return bisect.bisect_right(units, units[start] + limit) - 1


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _cut(text: str, units: list[int], start: int, end: int, limit: int, entities: Sequence[Entity]) -> int:
    """Where to end a part that starts at `start` and may reach `end` (a character position, exclusive)."""
    near = (e for e in entities if e.offset < units[end] and e.end > units[start])
    blocked = [(e.offset, e.end) for e in near if e.length <= limit]

    def allowed(position: int) -> bool:
        at = units[position]
        return position > start and not any(low < at < high for low, high in blocked)

    half = units[start] + limit // 2
    # A cut just before or just after the boundary loses only whitespace.
    boundaries = (
        lambda p: text.startswith("\n\n", p - 2) or text.startswith("\n\n", p),
        lambda p: text[p - 1] == "\n" or text.startswith("\n", p),
        lambda p: text[p - 1].isspace() or (p < len(text) and text[p].isspace()),
    )
    # A boundary in the second half of the room first; any boundary at all before cutting a word.
    for late_only in (True, False):
        for boundary in boundaries:
            for position in range(end, start, -1):
                if late_only and units[position] < half:
                    break
                if boundary(position) and allowed(position):
                    return position
    # No boundary: cut the word, though not inside an entity that fits, nor between a character and its mark.
    position = end
    while position > start + 1 and (not allowed(position) or _joined(text, position)):
        position -= 1
    if position <= start + 1 and not allowed(position):
        position = end  # an entity starting at `start` and longer than the room left: it has to be cut
    while position > start + 1 and _joined(text, position):
        position -= 1
    return position


def _joined(text: str, position: int) -> bool:
    """Whether a cut before `position` would separate a character from a mark, joiner or low surrogate."""
    if position <= 0 or position >= len(text):
        return False
    char, before = text[position], text[position - 1]
    if char.isspace():
        return False
    return (
        unicodedata.combining(char) > 0
        or char in _JOINERS
        or before == "\u200d"
        or ("\udc00" <= char <= "\udfff" and "\ud800" <= before <= "\udbff")
    )


def _rebase(entities: Sequence[Entity], start: int, stop: int) -> tuple[Entity, ...]:
    """The entities over [start, stop) (code units), clipped to it and counted from its start."""
    out = []
    for entity in entities:
        low, high = max(entity.offset, start), min(entity.end, stop)
        if high > low:
            out.append(replace(entity, offset=low - start, length=high - low))
    return tuple(out)
