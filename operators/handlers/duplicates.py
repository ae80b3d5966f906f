"""/duplicates, /merge N M [keep], /unmerge K, and the Merge / Not the same person buttons of an offer."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery
from aiogram.types import Message as TgMessage
from bson import ObjectId

from channels.telegram.filters import Magic
from channels.telegram.limits import ALERT_LIMIT
from gateway.duplicates import DismissOutcome, DuplicateFinder
from gateway.merge import MergeOutcome, Merger
from gateway.model import Operator
from gateway.storage.duplicates import DuplicateStatus
from gateway.storage.mongo import Storage
from operators.access import SupervisorOnly
from operators.commands import refuse
from operators.duplicates import alert_keyboard, card_line, decided_text, merge_text, reason
from operators.lookup import parse_number
from operators.texts import t

LIST_LIMIT = 20  # duplicates /duplicates shows, strongest first


def build_router() -> Router:
    """Duplicate commands and the offer buttons; /duplicates and /unmerge are for supervisors."""
    router = Router(name="duplicates")
    router.message.register(list_duplicates, Command("duplicates"), SupervisorOnly())
    router.message.register(unmerge, Command("unmerge"), SupervisorOnly())
    router.message.register(refuse, Command("duplicates", "unmerge"))
    router.message.register(merge, Command("merge"))
    router.callback_query.register(merge_button, Magic(F.data.startswith("dup:m:")))
    router.callback_query.register(dismiss_button, Magic(F.data.startswith("dup:n:")))
    return router


# -- commands -------------------------------------------------------------------------------------


async def list_duplicates(message: TgMessage, lang: str, finder: DuplicateFinder) -> None:
    """/duplicates: open duplicates, strongest first, each with its reason and buttons."""
    offers = await finder.pending(LIST_LIMIT)
    if not offers:
        await message.answer(t(lang, "dup.list.empty"))
        return
    title = t(lang, "dup.list.title", count=len(offers))
    if len(offers) >= LIST_LIMIT:
        title += "\n" + t(lang, "dup.list.more", count=LIST_LIMIT)
    await message.answer(title)
    for offer in offers:
        text = "\n".join(
            [
                f"🔁 {card_line(lang, offer.contact, offer.contact_thread)}",
                f"↔ {card_line(lang, offer.other, offer.other_thread)}",
                t(lang, "dup.offer.why", reason=reason(lang, offer.duplicate)),
            ]
        )
        await message.answer(text, reply_markup=alert_keyboard(lang, offer))


async def merge(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage, merger: Merger
) -> None:
    """/merge N M [K]: merge the customers of two conversations, keeping the older card or the card of #K."""
    args = (command.args or "").split()
    numbers = [parse_number(arg) for arg in args]
    if len(numbers) not in (2, 3) or None in numbers:
        await message.answer(t(lang, "dup.merge.usage"))
        return
    first, second = numbers[0], numbers[1]
    keep = numbers[2] if len(numbers) == 3 else None
    assert first is not None and second is not None
    for number in (first, second):
        if await store.threads.by_number(number) is None:
            await message.answer(t(lang, "thread.unknown", number=number))
            return
    if keep is not None and keep not in (first, second):
        await message.answer(t(lang, "dup.merge.bad_keep", keep=keep, first=first, second=second))
        return
    result = await merger.merge_threads(first, second, by=operator.id, keep=keep)
    await message.answer(merge_text(lang, result, first, second))


async def unmerge(message: TgMessage, command: CommandObject, operator: Operator, lang: str, merger: Merger) -> None:
    """/unmerge K: undo merge #K; both cards as they were, plus what arrived since."""
    number = parse_number(command.args)
    if number is None:
        await message.answer(t(lang, "dup.unmerge.usage"))
        return
    result = await merger.unmerge(number, by=operator.id)
    if result.outcome is MergeOutcome.UNKNOWN and result.merge is None:
        await message.answer(t(lang, "dup.unmerge.unknown", merge=number))
        return
    await message.answer(merge_text(lang, result))


# -- buttons --------------------------------------------------------------------------------------


async def merge_button(query: CallbackQuery, operator: Operator, lang: str, store: Storage, merger: Merger) -> None:
    """Merge (`dup:m:<duplicate>:0`, the older card stays) or Merge keeping a card (`dup:m:<duplicate>:<card>`)."""
    parts = (query.data or "").split(":")
    duplicate_id = _object_id(parts[2] if len(parts) == 4 else None)
    keep = _object_id(parts[3]) if len(parts) == 4 and parts[3] != "0" else None
    duplicate = await store.duplicates.get(duplicate_id) if duplicate_id else None
    if duplicate is None or (len(parts) == 4 and parts[3] != "0" and keep not in duplicate.contact_ids):
        await _settle(query, t(lang, "dup.unknown"))
        return
    if duplicate.status is DuplicateStatus.DISMISSED:
        await _settle(query, decided_text(lang, duplicate))
        return
    result = await merger.merge_duplicate(duplicate.id, by=operator.id, keep=keep)
    if result.outcome is MergeOutcome.NOT_ALLOWED:
        now = await store.duplicates.get(duplicate.id)
        if now is not None and now.status is DuplicateStatus.DISMISSED:  # dismissed while we looked
            await _settle(query, decided_text(lang, now))
        else:
            await _refuse(query, t(lang, "dup.not_allowed"))
        return
    if result.outcome is MergeOutcome.BUSY:
        await _refuse(query, t(lang, "dup.busy"))
        return
    await _settle(query, merge_text(lang, result))


async def dismiss_button(
    query: CallbackQuery, operator: Operator, lang: str, store: Storage, finder: DuplicateFinder
) -> None:
    """Not the same person (`dup:n:<duplicate>`): remembered, never offered again for this pair."""
    parts = (query.data or "").split(":")
    duplicate_id = _object_id(parts[2] if len(parts) == 3 else None)
    duplicate = await store.duplicates.get(duplicate_id) if duplicate_id else None
    if duplicate is None:
        await _settle(query, t(lang, "dup.unknown"))
        return
    if duplicate.status is not DuplicateStatus.OPEN:
        await _settle(query, decided_text(lang, duplicate))
        return
    result = await finder.dismiss(duplicate.id, by=operator.id)
    if result.outcome is DismissOutcome.NOT_ALLOWED:
        await _refuse(query, t(lang, "dup.not_allowed"))
    elif result.outcome is DismissOutcome.DISMISSED:
        await _settle(query, t(lang, "dup.dismissed"))
    elif result.outcome is DismissOutcome.ALREADY_DECIDED and result.duplicate is not None:
        await _settle(query, decided_text(lang, result.duplicate))
    else:
        await _settle(query, t(lang, "dup.unknown"))


async def _settle(query: CallbackQuery, text: str) -> None:
    """The offer is spent: its buttons go and the outcome is written under it."""
    await query.answer()
    if isinstance(query.message, TgMessage) and query.message.text:
        try:
            await query.message.edit_text(f"{query.message.text}\n\n{text}", reply_markup=None)
            return
        except TelegramBadRequest:  # too old to edit: say it in a new message instead
            pass
    if isinstance(query.message, TgMessage):
        await query.message.answer(text)
    elif query.bot is not None:
        await query.bot.send_message(query.from_user.id, text)


async def _refuse(query: CallbackQuery, text: str) -> None:
    """Nothing happened: only the operator who pressed sees why, and the offer keeps its buttons."""
    await query.answer(text[:ALERT_LIMIT], show_alert=True)


def _object_id(raw: str | None) -> ObjectId | None:
    return ObjectId(raw) if raw and ObjectId.is_valid(raw) else None
