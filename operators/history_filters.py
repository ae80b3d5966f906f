"""/history's filters: one type of message only, and the pages a widget visitor went through."""

from __future__ import annotations

import math
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from channels.telegram.limits import join_lines
from gateway.model import Thread
from gateway.storage.messages import HISTORY_FILTERS
from gateway.storage.mongo import Storage
from operators.lookup import live_contact
from operators.texts import t

PAGE = 10
FILTERS = (*HISTORY_FILTERS, "pages")


def page_buttons(lang: str, thread: Thread, page: int, pages: int, only: str | None) -> InlineKeyboardMarkup | None:
    """Older/Newer under a history page; the filter travels with them (`hist:N:page:filter`)."""
    suffix = f":{only}" if only else ""
    buttons = []
    if page < pages:
        data = f"hist:{thread.number}:{page + 1}{suffix}"
        buttons.append(InlineKeyboardButton(text=t(lang, "history.older"), callback_data=data))
    if page > 1:
        data = f"hist:{thread.number}:{page - 1}{suffix}"
        buttons.append(InlineKeyboardButton(text=t(lang, "history.newer"), callback_data=data))
    return InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


async def pages_view(
    store: Storage, lang: str, thread: Thread, page: int
) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """The pages a widget visitor went through (their navigation, kept on the card), newest page first."""
    contact = await live_contact(store, thread)
    name = contact.display_name if contact else "?"
    visitor: Any = (contact.visitor if contact else None) or {}
    visited = [p for p in visitor.get("pages") or [] if isinstance(p, dict) and p.get("url")]
    if not visited:
        return [t(lang, "history.empty_of", name=name, only="pages")], None
    pages = math.ceil(len(visited) / PAGE)
    page = min(page, pages)
    newest_first = list(reversed(visited))[(page - 1) * PAGE : page * PAGE]
    lines = [t(lang, "history.title", name=name, page=page, pages=pages) + " " + t(lang, "history.only", only="pages")]
    for visit in reversed(newest_first):
        at = visit.get("at")
        when = f"{at:%d.%m %H:%M} " if hasattr(at, "strftime") else ""
        title = f" — {visit['title']}" if visit.get("title") else ""
        lines.append(f"{when}🌐 {visit['url']}{title}")
    return join_lines(lines), page_buttons(lang, thread, page, pages, "pages")
