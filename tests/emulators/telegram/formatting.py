"""Text formatting as the Bot API server applies it: parse_mode → (text, entities), auto-detected entities.

Offsets and lengths are in UTF-16 code units, error wording follows tdlib's `parse_html` /
`parse_markdown_v2` ("Bad Request: can't parse entities: …", byte offsets into the UTF-8 source).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any, Final

from .errors import ApiError

Entity = dict[str, Any]

_HTML_SIMPLE: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_HTML_TAGS: Final = frozenset({*_HTML_SIMPLE, "a", "span", "blockquote", "tg-emoji"})
_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_NO_AUTO_INSIDE: Final = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji", "url", "email"})

_AUTO_PATTERNS: Final = (
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("url", re.compile(r"(?<![\w@])(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:!?)\]'»]")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#&])#[^\W\d_][\w]*")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{3,8}(?![\w])")),
    ("bot_command", re.compile(r"(?<![\w/\\<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z][A-Za-z0-9_]{2,31})?(?![\w/])")),
)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (the unit of entity offsets)."""
    return len(text.encode("utf-16-le")) // 2


def parse_error(reason: str) -> ApiError:
    """A 400 for text the server cannot parse."""
    return ApiError.bad_request(f"Bad Request: can't parse entities: {reason}")


def format_text(text: str, parse_mode: str | None, entities: list[Entity] | None) -> tuple[str, list[Entity]]:
    """Apply parse_mode or explicit entities, then add the entities the server auto-detects."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        text, parsed = parse_html(text)
    elif mode == "markdownv2":
        text, parsed = parse_markdown_v2(text)
    elif mode == "markdown":
        text, parsed = parse_markdown(text)
    elif mode:
        raise ApiError.bad_request("Bad Request: unsupported parse_mode")
    else:
        parsed = [dict(entity) for entity in entities or []]
    return text, sort_entities(parsed + detect_entities(text, parsed))


def detect_entities(text: str, existing: Sequence[Entity] = ()) -> list[Entity]:
    """Entities Telegram finds by itself: urls, emails, @mentions, #hashtags, $CASHTAGS, /commands."""
    taken = [
        (entity["offset"], entity["offset"] + entity["length"])
        for entity in existing
        if entity["type"] in _NO_AUTO_INSIDE
    ]
    found: list[Entity] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start = utf16_len(text[: match.start()])
            end = start + utf16_len(match.group())
            if any(start < stop and begin < end for begin, stop in taken):
                continue
            taken.append((start, end))
            found.append({"offset": start, "length": end - start, "type": kind})
    return sort_entities(found)


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Order entities as the server does: by offset, outer (longer) first."""
    return sorted((e for e in entities if e["length"] > 0), key=lambda e: (e["offset"], -e["length"]))


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram's HTML subset into plain text and entities."""
    out: list[str] = []
    length = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[Entity] = []
    i, size = 0, len(source)
    while i < size:
        char = source[i]
        if char == "&":
            end = source.find(";", i, i + 12)
            decoded = html.unescape(source[i : end + 1]) if end != -1 else char
            if end == -1 or decoded == source[i : end + 1]:
                decoded, end = char, i
            out.append(decoded)
            length += utf16_len(decoded)
            i = end + 1
            continue
        if char != "<":
            out.append(char)
            length += utf16_len(char)
            i += 1
            continue
        close = source.find(">", i)
        if source.startswith("</", i):
            if close == -1:
                raise parse_error(f"Unclosed end tag at byte offset {_byte_offset(source, i)}")
            name = source[i + 2 : close].strip().lower()
            if not stack:
                raise parse_error(f"Unexpected end tag at byte offset {_byte_offset(source, i)}")
            tag, start, attrs = stack.pop()
            if name != tag:
                offset = _byte_offset(source, i)
                raise parse_error(f'Unmatched end tag at byte offset {offset}, expected "</{tag}>", found "</{name}>"')
            entity = _html_entity(tag, attrs, stack, start, length - start)
            if entity is not None:
                entities.append(entity)
            i = close + 1
            continue
        match = re.match(r"<([A-Za-z0-9-]*)", source[i:])
        name = match.group(1).lower() if match else ""
        if name not in _HTML_TAGS:
            raise parse_error(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}')
        if close == -1:
            raise parse_error(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        attrs = {
            key.lower(): html.unescape(next((v for v in values if v), ""))
            for key, *values in re.findall(
                r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?", source[i + 1 + len(name) : close]
            )
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise parse_error('Tag "span" must have class "tg-spoiler"')
        stack.append((name, length, attrs))
        i = close + 1
    if stack:
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _html_entity(
    tag: str, attrs: dict[str, str], stack: list[tuple[str, int, dict[str, str]]], offset: int, length: int
) -> Entity | None:
    if tag == "code" and stack and stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
        # <pre><code class="language-x"> is one pre entity carrying the language.
        stack[-1][2]["language"] = attrs["class"].removeprefix("language-")
        return None
    entity: Entity = {"offset": offset, "length": length}
    if tag in _HTML_SIMPLE:
        entity["type"] = _HTML_SIMPLE[tag]
        if tag == "pre" and attrs.get("language"):
            entity["language"] = attrs["language"]
    elif tag == "span":
        entity["type"] = "spoiler"
    elif tag == "a":
        url = attrs.get("href", "")
        if not url:
            return None
        entity.update(type="text_link", url=url)
    elif tag == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in attrs else "blockquote"
    else:
        entity.update(type="custom_emoji", custom_emoji_id=attrs.get("emoji-id", ""))
    return entity


_MDV2_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2, rejecting unescaped reserved characters like the real server."""
    out: list[str] = []
    length = 0
    stack: list[tuple[str, int, int]] = []  # (type, utf16 offset, source byte offset)
    entities: list[Entity] = []
    quote_start: int | None = None
    pre_language = ""
    i, size = 0, len(source)

    def emit(text: str) -> None:
        nonlocal length
        out.append(text)
        length += utf16_len(text)

    while i < size:
        char = source[i]
        nxt = source[i + 1] if i + 1 < size else ""
        at_line_start = i == 0 or source[i - 1] == "\n"
        if char == "\\" and nxt and 0 < ord(nxt) < 127:
            emit(nxt)
            i += 2
            continue
        if char == "\n" and quote_start is not None and not source.startswith(">", i + 1):
            entities.append({"offset": quote_start, "length": length - quote_start, "type": "blockquote"})
            quote_start = None
        if char == ">" and at_line_start:
            if quote_start is None:
                quote_start = length
            i += 1
            continue
        if char not in _MDV2_RESERVED:
            emit(char)
            i += 1
            continue
        top = stack[-1][0] if stack else None
        if char == "`":
            fence = source.startswith("```", i)
            if top in {"code", "pre"}:
                if top == "pre" and not fence:
                    emit(char)
                    i += 1
                    continue
                kind, start, _ = stack.pop()
                entity: Entity = {"offset": start, "length": length - start, "type": kind}
                if kind == "pre" and pre_language:
                    entity["language"] = pre_language
                entities.append(entity)
                i += 3 if kind == "pre" else 1
                continue
            if fence:
                newline = source.find("\n", i + 3)
                first_line = source[i + 3 : newline] if newline != -1 else ""
                pre_language = first_line if first_line and " " not in first_line else ""
                stack.append(("pre", length, _byte_offset(source, i)))
                i = newline + 1 if pre_language or (newline != -1 and not first_line) else i + 3
                continue
            stack.append(("code", length, _byte_offset(source, i)))
            pre_language = ""
            i += 1
            continue
        if top in {"code", "pre"}:
            emit(char)
            i += 1
            continue
        closing = {
            "bold": char == "*",
            "italic": char == "_" and nxt != "_",
            "underline": char == "_" and nxt == "_",
            "strikethrough": char == "~",
            "spoiler": char == "|" and nxt == "|",
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }.get(top or "", False)
        if closing:
            kind, start, begin = stack.pop()
            i += 2 if kind in {"underline", "spoiler"} else 1
            entity = {"offset": start, "length": length - start, "type": kind}
            if kind in {"text_link", "custom_emoji"}:
                if not source.startswith("(", i):
                    raise parse_error(f"Can't find end of a URL at byte offset {_byte_offset(source, i)}")
                url, i = _read_mdv2_url(source, i + 1, begin)
                if kind == "text_link":
                    entity["url"] = url
                else:
                    entity["custom_emoji_id"] = url.partition("id=")[2]
            entities.append(entity)
            continue
        opening = {"*": "bold", "~": "strikethrough", "[": "text_link"}.get(char)
        if char == "_":
            opening = "underline" if nxt == "_" else "italic"
        elif char == "|" and nxt == "|":
            opening = "spoiler"
        elif char == "!" and nxt == "[":
            opening = "custom_emoji"
            i += 1
        if opening is None:
            raise parse_error(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        stack.append((opening, length, _byte_offset(source, i)))
        i += 2 if opening in {"underline", "spoiler"} else 1
    if stack:
        kind, _, begin = stack[-1]
        raise parse_error(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {begin}")
    if quote_start is not None:
        entities.append({"offset": quote_start, "length": length - quote_start, "type": "blockquote"})
    return "".join(out), entities


def _read_mdv2_url(source: str, i: int, begin: int) -> tuple[str, int]:
    url: list[str] = []
    while i < len(source) and source[i] != ")":
        if source[i] == "\\" and i + 1 < len(source):
            i += 1
        url.append(source[i])
        i += 1
    if i >= len(source):
        raise parse_error(f"Can't find end of a URL at byte offset {begin}")
    return "".join(url), i + 1


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Parse legacy Markdown (`*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````, `[text](url)`)."""
    out: list[str] = []
    length = 0
    entities: list[Entity] = []
    i, size = 0, len(source)
    markers = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}
    while i < size:
        char = source[i]
        if char == "\\" and i + 1 < size and source[i + 1] in "_*`[":
            out.append(source[i + 1])
            length += 1
            i += 2
            continue
        if char not in markers:
            out.append(char)
            length += utf16_len(char)
            i += 1
            continue
        begin = _byte_offset(source, i)
        if source.startswith("```", i):
            end = source.find("```", i + 3)
            kind, body, i = "pre", source[i + 3 : end], end + 3
        else:
            terminator = "]" if char == "[" else char
            end = source.find(terminator, i + 1)
            kind, body, i = markers[char], source[i + 1 : end], end + 1
        if end == -1:
            raise parse_error(f"Can't find end of the entity starting at byte offset {begin}")
        entity: Entity = {"offset": length, "length": utf16_len(body), "type": kind}
        if kind == "text_link":
            if not source.startswith("(", i) or source.find(")", i) == -1:
                raise parse_error(f"Can't find end of the entity starting at byte offset {begin}")
            close = source.find(")", i)
            entity["url"], i = source[i + 1 : close], close + 1
        out.append(body)
        length += entity["length"]
        entities.append(entity)
    return "".join(out), entities
