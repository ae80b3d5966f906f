"""Canned replies shared by the team: /canned, /canned add|remove, and `!name` expanded in replies."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message as TgMessage

from channels.telegram.limits import TEXT_LIMIT
from gateway.model import Operator, utcnow
from gateway.storage.canned import Saved
from gateway.storage.mongo import Storage
from operators.texts import t

NAME = re.compile(r"[a-z0-9_-]{1,32}")
# `!name` as a word of its own: "Hello!" and "wow!nice" are left alone.
TOKEN = re.compile(r"(?<!\S)!([a-z0-9_-]{1,32})(?![\w-])")
PREVIEW = 80
LIST_LIMIT = 4000


def build_router() -> Router:
    """/canned; the `!name` expansion itself runs in the replies router."""
    router = Router(name="canned")
    router.message.register(canned, Command("canned"))
    return router


async def canned(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage) -> None:
    """`/canned` lists; `/canned add name text` saves; `/canned remove name` deletes."""
    args = (command.args or "").split(maxsplit=2)
    action = args[0].lower() if args else "list"
    if action == "list" and len(args) <= 1:
        await _list(message, lang, store)
    elif action == "add" and len(args) == 3:
        await message.answer(await _add(store, lang, operator, args[1], args[2].strip()))
    elif action == "remove" and len(args) == 2:
        await message.answer(await _remove(store, lang, operator, args[1]))
    else:
        await message.answer(t(lang, "canned.usage"))


async def _list(message: TgMessage, lang: str, store: Storage) -> None:
    replies = await store.canned.all()
    if not replies:
        await message.answer(t(lang, "canned.empty"))
        return
    text = t(lang, "canned.title")
    for reply in replies:
        preview = " ".join(reply.text.split())
        line = t(
            lang,
            "canned.item",
            name=reply.name,
            text=preview if len(preview) <= PREVIEW else preview[: PREVIEW - 1] + "…",
        )
        if len(text) + len(line) + 1 > LIST_LIMIT:
            await message.answer(text)
            text = line
        else:
            text += "\n" + line
    await message.answer(text)


async def _add(store: Storage, lang: str, operator: Operator, name: str, text: str) -> str:
    if not NAME.fullmatch(name):
        return t(lang, "canned.bad_name", name=name)
    if len(text) > TEXT_LIMIT:
        return t(lang, "canned.too_long", limit=TEXT_LIMIT)
    saved = await store.canned.save(
        name, text, author_id=operator.id, author_name=operator.name, now=utcnow(), replace_any=operator.is_supervisor
    )
    if saved is Saved.FORBIDDEN:
        existing = await store.canned.get(name)
        return t(lang, "canned.forbidden", name=name, author=existing.author_name if existing else "?")
    return t(lang, "canned.added" if saved is Saved.CREATED else "canned.replaced", name=name)


async def _remove(store: Storage, lang: str, operator: Operator, name: str) -> str:
    existing = await store.canned.get(name)
    if existing is None:
        return t(lang, "canned.missing", name=name)
    if existing.author_id != operator.id and not operator.is_supervisor:
        return t(lang, "canned.forbidden", name=name, author=existing.author_name or "?")
    await store.canned.remove(name)
    return t(lang, "canned.removed", name=name)


async def expand(text: str, store: Storage) -> tuple[str, list[str]]:
    """The text with every `!name` replaced by its canned reply, and the names that do not exist."""
    names = list(dict.fromkeys(TOKEN.findall(text)))
    if not names:
        return text, []
    known = await store.canned.texts(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        return text, unknown
    return TOKEN.sub(lambda match: known[match.group(1)], text), []
