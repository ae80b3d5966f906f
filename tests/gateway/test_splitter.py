"""The splitter takes any text: parts fit, come in order, lose nothing but whitespace at the cuts, and never cut a
surrogate pair or an entity that fits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.splitter import Entity, Part, split, utf16_len

# Words of letters, emoji outside the BMP (two UTF-16 units each), accents and joiners, with all kinds of space.
ALPHABET = st.sampled_from(["a", "b", "Ж", "é", "😀", "👍", "\u0301", "\u200d", "\ufe0f", "€", "中"])
WORD = st.text(ALPHABET, min_size=1, max_size=30)
SPACE = st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n "])


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, max_size=60))
    out = draw(st.sampled_from(["", " ", "\n"]))
    for word in words:
        out += word + draw(SPACE)
    return out


def pieces(text: str, parts: list[Part]) -> list[int]:
    """Each part is the next stretch of `text`, with only whitespace between them and around them; returns
    where each starts."""
    position, starts = 0, []
    for part in parts:
        while position < len(text) and text[position].isspace() and not text.startswith(part.text, position):
            position += 1
        assert text.startswith(part.text, position), (text, part.text, position)
        starts.append(position)
        position += len(part.text)
    assert text[position:].strip() == ""
    return starts


@given(text=st.text(), limit=st.integers(min_value=2, max_value=60))
def test_any_text_splits_into_parts_that_fit_and_lose_nothing(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(utf16_len(p.text) <= limit and p.text.strip() for p in parts)
    pieces(text, parts)


# What shows as one character: a letter with its accent, an emoji with its variation selector, two joined emoji.
# The last is a surrogate pair as two code points, as a text decoded with surrogatepass holds it.
CLUSTER = st.sampled_from(["a", "é", "e\u0301", "😀", "❤\ufe0f", "👍\u200d👍", "中", "\ud83d\ude00"])


@given(
    text=st.lists(st.lists(CLUSTER, min_size=1, max_size=40).map("".join), max_size=8).map(" ".join),
    limit=st.integers(min_value=5, max_value=120),
)
def test_surrogate_pairs_and_marks_stay_with_their_character(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(utf16_len(p.text) <= limit for p in parts)
    pieces(text, parts)
    for part in parts:
        # No lone surrogate: no pair was cut.
        part.text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        assert not part.text.startswith(("\u0301", "\ufe0f", "\u200d")), (text, part.text)
        assert not part.text.endswith("\u200d"), (text, part.text)


@given(text=texts(), limit=st.integers(min_value=40, max_value=200))
def test_words_shorter_than_half_the_room_are_never_cut(text: str, limit: int) -> None:
    parts = split(text, limit)
    position = 0
    for part in parts[:-1]:
        position = text.index(part.text, position) + len(part.text)
        assert text[position].isspace(), (part.text, text[position:])


@st.composite
def with_entities(draw: st.DrawFn) -> tuple[str, list[Entity]]:
    text = draw(texts())
    units = utf16_len(text)
    entities = []
    for number in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, units))
        length = draw(st.integers(1, 40))
        entities.append(Entity(start, min(length, units - start) or 1, {"type": "bold", "n": number}))
    # Entities begin and end on character boundaries, never inside a surrogate pair.
    boundaries = set(_boundaries(text))
    return text, [e for e in entities if e.offset in boundaries and e.end in boundaries and e.end <= units]


def _boundaries(text: str) -> list[int]:
    out, at = [0], 0
    for char in text:
        at += utf16_len(char)
        out.append(at)
    return out


def _units(text: str) -> bytes:
    return text.encode("utf-16-le")


@given(case=with_entities(), limit=st.integers(min_value=41, max_value=200))
def test_entities_that_fit_are_never_cut_and_keep_their_text(case: tuple[str, list[Entity]], limit: int) -> None:
    text, entities = case
    parts = split(text, limit, entities)
    pieces(text, parts)
    raw = _units(text)
    # Where each part starts in the original, in UTF-16 units.
    starts, position = [], 0
    for part in parts:
        while not text.startswith(part.text, position):
            position += 1
        starts.append(utf16_len(text[:position]))
        position += len(part.text)
    for entity in entities:
        covered = raw[entity.offset * 2 : entity.end * 2].decode("utf-16-le")
        if not covered.strip():
            continue
        holders = [
            (start, part)
            for start, part in zip(starts, parts, strict=True)
            if start < entity.end and start + utf16_len(part.text) > entity.offset
        ]
        [(_, part)] = holders
        [kept] = [e for e in part.entities if e.data == entity.data]
        inner = _units(part.text)[kept.offset * 2 : kept.end * 2].decode("utf-16-le")
        assert inner.strip() == covered.strip() and inner in covered


def test_a_word_longer_than_the_room_is_cut_where_it_must_be() -> None:
    assert [p.text for p in split("a" * 10, 4)] == ["aaaa", "aaaa", "aa"]
    assert [p.text for p in split("😀" * 3, 4)] == ["😀😀", "😀"]


def test_line_breaks_are_preferred_to_spaces_and_blank_text_gives_nothing() -> None:
    text = "first line is here\nsecond one here too"
    assert [p.text for p in split(text, 30)] == ["first line is here", "second one here too"]
    assert split(" \n\t ", 10) == []
    assert split("", 10) == []


def test_an_entity_longer_than_the_room_is_split_with_the_text() -> None:
    bold = Entity(0, 10, {"type": "bold"})
    parts = split("a" * 10, 4, [bold])
    assert [(p.text, [(e.offset, e.length) for e in p.entities]) for p in parts] == [
        ("aaaa", [(0, 4)]),
        ("aaaa", [(0, 4)]),
        ("aa", [(0, 2)]),
    ]
