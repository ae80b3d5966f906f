"""How the bot answers: button presses acknowledged in place, lines cut to fit, durations in words."""

from __future__ import annotations

from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from operators.texts import t

LINE_LIMIT = 300  # characters of one message shown in a list


def button_arg(data: str | None, index: int = 1) -> str | None:
    """One field of callback data such as `info:17` or `hist:17:2`."""
    parts = (data or "").split(":")
    return parts[index] if len(parts) > index else None


async def answer_query(query: CallbackQuery, *texts: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Acknowledge a button press and answer in the chat the button is in (the markup goes on the last text)."""
    await query.answer()
    for i, text in enumerate(texts):
        keyboard = markup if i == len(texts) - 1 else None
        if isinstance(query.message, TgMessage):
            await query.message.answer(text, reply_markup=keyboard)
        elif query.bot is not None:
            await query.bot.send_message(query.from_user.id, text, reply_markup=keyboard)


def short(text: str, limit: int = LINE_LIMIT) -> str:
    """The text cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(lang: str, seconds: float) -> str:
    """`42s`, `5 min`, `2 h 3 min`, `1 d 4 h`."""
    s = max(0, int(seconds))
    if s < 60:
        return t(lang, "duration.seconds", n=s)
    if s < 3600:
        return t(lang, "duration.minutes", n=s // 60)
    if s < 86400:
        return t(lang, "duration.hours", h=s // 3600, m=s % 3600 // 60)
    return t(lang, "duration.days", d=s // 86400, h=s % 86400 // 3600)
