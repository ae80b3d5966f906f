"""What customers do besides writing, shown to their operator without noise: the pages a widget visitor
moves through (one line per 30 s at most, edited as they go on), what they say about themselves, their
typing (Telegram's "typing…"), and that they left the website or came back."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiogram.methods import EditMessageText, SendChatAction, SendMessage
from aiogram.types import Message as TgMessage
from bson import ObjectId

from gateway.events import EventBus, VisitorActivity
from gateway.model import Thread
from gateway.storage.mongo import Storage
from operators.relay import Relay
from operators.texts import t

# A visitor's navigation gets one new line in this long at most; pages in between edit that line.
NAVIGATION_LINE_SECONDS = 30.0
# Telegram shows "typing…" for about 5 s: one chat action in this long keeps it up.
TYPING_SECONDS = 4.0
# Pages named on one navigation line besides the current one, each cut to so many characters.
TRAIL = 3
PAGE_CHARS = 300


@dataclass
class _Line:
    """The latest navigation line in an operator's chat: where it is, since when, which pages it names."""

    message_id: int
    at: float
    pages: list[str]


class Visitors:
    """Follows visitor activity; kept in memory per process, since a visitor's socket (whose frames these are)
    lives in one process."""

    def __init__(self, store: Storage, relay: Relay) -> None:
        self.store = store
        self.relay = relay
        self._lines: dict[tuple[int, ObjectId], _Line] = {}
        self._typing: dict[tuple[int, ObjectId], float] = {}

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(VisitorActivity, self._on_activity)

    async def _on_activity(self, event: VisitorActivity) -> None:
        thread = await self.store.threads.open_for(event.contact.id)
        if thread is None or thread.operator_id is None or event.contact.blocked:
            return
        operator = await self.store.operators.get_brief(thread.operator_id)
        if operator is None:
            return
        lang, chat, details = self.relay.lang(operator), operator.id, dict(event.details)
        now = asyncio.get_running_loop().time()
        if event.kind == "typing":
            if now - self._typing.get((chat, thread.id), -TYPING_SECONDS) >= TYPING_SECONDS:
                self._typing[(chat, thread.id)] = now
                await self.relay.send(chat, None, None, SendChatAction(chat_id=chat, action="typing"))
        elif event.kind == "page":
            await self._navigated(chat, lang, thread, _page(details), now)
        elif event.kind == "identified":
            said = ", ".join(details[k] for k in ("name", "email", "phone") if k in details)
            await self._say(chat, thread, t(lang, "visitor.identified", number=thread.number, details=said))
        elif event.kind in ("left", "back"):
            self._lines.pop((chat, thread.id), None)  # what follows starts a new navigation line
            await self._say(chat, thread, t(lang, f"visitor.{event.kind}", number=thread.number))

    async def _navigated(self, chat: int, lang: str, thread: Thread, page: str, now: float) -> None:
        line = self._lines.get((chat, thread.id))
        if line is not None and now - line.at < NAVIGATION_LINE_SECONDS:
            if line.pages[-1] == page:
                return
            line.pages.append(page)
            edit = EditMessageText(chat_id=chat, message_id=line.message_id, text=_text(lang, thread, line.pages))
            if await self.relay.send(chat, thread, None, edit) is not None:
                return
        sent = await self._say(chat, thread, _text(lang, thread, [page]))
        if sent is not None:
            self._lines[(chat, thread.id)] = _Line(sent.message_id, now, [page])

    async def _say(self, chat: int, thread: Thread, text: str) -> TgMessage | None:
        return await self.relay.send(chat, thread, None, SendMessage(chat_id=chat, text=text))


def _page(details: dict[str, str]) -> str:
    title, url = details.get("title"), details.get("url", "")
    page = f"{title} ({url})" if title else url
    return page if len(page) <= PAGE_CHARS else page[: PAGE_CHARS - 1] + "…"


def _text(lang: str, thread: Thread, pages: list[str]) -> str:
    if len(pages) == 1:
        return t(lang, "visitor.page", number=thread.number, page=pages[0])
    before = " ← ".join(reversed(pages[-1 - TRAIL : -1]))
    return t(lang, "visitor.pages", number=thread.number, page=pages[-1], before=before)
