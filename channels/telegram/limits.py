"""What the Bot API allows: message, caption, button and file sizes; texts cut to fit them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from channels.base import SendError
from gateway.splitter import split, utf16_len

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
    """Parts of at most `limit` UTF-16 code units, cut at a paragraph, line or word boundary when there is one."""
    return [part.text for part in split(text, limit)]


def join_lines(lines: Iterable[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Lines joined into as few messages of at most `limit` UTF-16 code units as fit; a longer line is split."""
    return split_text("\n".join(lines), limit)


def fits(text: str, limit: int) -> bool:
    """Whether Telegram takes `text` under a limit it counts in UTF-16 code units (TEXT_LIMIT, CAPTION_LIMIT)."""
    return utf16_len(text) <= limit
