"""What the Bot API allows: message, caption, button and file sizes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from channels.base import SendError

TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
CALLBACK_DATA_LIMIT: Final = 64  # bytes
ALERT_LIMIT: Final = 200  # the text of a callback query answer
TOPIC_NAME_LIMIT: Final = 128
MB: Final = 1024 * 1024
DOWNLOAD_LIMIT: Final = 20 * MB  # what a bot may download through getFile
UPLOAD_LIMIT: Final = 50 * MB


def too_large_download(size: int | None) -> SendError:
    """Why a file cannot be fetched from Telegram."""
    what = f"the file is {size / MB:.1f} MB" if size else "the file is larger than 20 MB"
    return SendError(f"{what}; Telegram bots can only download files up to 20 MB", code="too_large", permanent=True)


def too_large_upload(size: int | None = None) -> SendError:
    """Why a file cannot be sent through Telegram."""
    what = f"the file is {size / MB:.1f} MB" if size else "the file is larger than 50 MB"
    return SendError(f"{what}; Telegram bots can only send files up to 50 MB", code="too_large", permanent=True)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut at a line break or space when one is near the end."""
    pieces = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        if cut < limit // 2:
            pieces.append(text[:limit])
            text = text[limit:]
        else:
            pieces.append(text[:cut])
            text = text[cut + 1 :]
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def utf16_len(text: str) -> int:
    """A text's length as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def join_lines(lines: Iterable[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Lines joined into as few messages of at most `limit` UTF-16 units as possible (a longer line is cut)."""
    out: list[str] = []
    for line in lines:
        while utf16_len(line) > limit:
            line = line[: len(line) - (utf16_len(line) - limit + 1) // 2 - 1] + "…"
        if out and utf16_len(out[-1]) + 1 + utf16_len(line) <= limit:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out
