"""/export N and /forget N (with its Erase / Cancel buttons): a customer's data on request, for supervisors."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.methods import SendDocument
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage
from bson import ObjectId

from channels.telegram.filters import Magic
from channels.telegram.limits import ALERT_LIMIT
from gateway.api_responses import export_out
from gateway.model import Operator
from gateway.privacy import ErasureOutcome, ErasureResult, Privacy
from gateway.storage.mongo import Storage
from operators.access import SupervisorOnly
from operators.commands import refuse
from operators.lookup import find_thread, live_contact, may_see, parse_number
from operators.relay import Relay
from operators.texts import t

# The largest file Telegram takes from a bot.
UPLOAD_LIMIT = 50 * 1024 * 1024


def build_router() -> Router:
    """Both commands and the buttons are for supervisors; anyone else is told so."""
    router = Router(name="privacy")
    router.message.register(export, Command("export"), SupervisorOnly())
    router.message.register(forget, Command("forget"), SupervisorOnly())
    router.message.register(refuse, Command("export", "forget"))
    router.callback_query.register(forget_button, Magic(F.data.startswith("forget:")))
    return router


async def export(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage, privacy: Privacy,
    relay: Relay,
) -> None:  # fmt: skip
    """/export N: everything stored about the customer of #N, as a JSON file (the API's export)."""
    thread, error = await find_thread(store, operator, lang, command.args, command="export", allowed=may_see)
    if thread is None:
        await message.answer(error)
        return
    contact = await live_contact(store, thread)
    found = await privacy.export(contact.id) if contact is not None else None
    if contact is None or found is None:
        await message.answer(t(lang, "privacy.unknown", number=thread.number))
        return
    body = export_out(found).model_dump_json(indent=2).encode()
    if len(body) > UPLOAD_LIMIT:
        size = round(len(body) / 1024 / 1024)
        await message.answer(t(lang, "privacy.export.too_big", number=thread.number, size=size, contact=contact.id))
        return
    caption = t(
        lang,
        "privacy.export.caption",
        number=thread.number,
        threads=len(found.threads),
        messages=sum(len(x.messages) for x in found.threads),
    )
    document = BufferedInputFile(body, filename=f"customer-{contact.id}.json")
    # Through the relay, so the file counts as shown for this thread: erasing the customer deletes it too.
    chat_id = message.chat.id
    await relay.send(chat_id, thread, None, SendDocument(chat_id=chat_id, document=document, caption=caption))


async def forget(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage) -> None:
    """/forget N: what erasing the customer of #N takes, with Erase and Cancel buttons."""
    thread, error = await find_thread(store, operator, lang, command.args, command="forget", allowed=may_see)
    if thread is None:
        await message.answer(error)
        return
    contact = await live_contact(store, thread)
    if contact is None:
        await message.answer(t(lang, "privacy.unknown", number=thread.number))
        return
    merged = len(await store.contacts.merged_into_any([contact.id]))
    text = t(
        lang,
        "privacy.forget.confirm",
        number=thread.number,
        merged=t(lang, "privacy.forget.merged", count=merged) if merged else "",
        threads=await store.threads.count_for(contact.id),
        messages=await store.messages.count_for_contact(contact.id),
    )
    data = f"{contact.id}:{thread.number}"
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=t(lang, "privacy.button.erase"), callback_data=f"forget:y:{data}"),
                InlineKeyboardButton(text=t(lang, "privacy.button.cancel"), callback_data=f"forget:n:{data}"),
            ]
        ]
    )
    await message.answer(text, reply_markup=keyboard)


async def forget_button(query: CallbackQuery, operator: Operator, lang: str, privacy: Privacy) -> None:
    """Erase (`forget:y:<card>:<number>`) or Cancel (`forget:n:...`) under a /forget question."""
    parts = (query.data or "").split(":")
    number = parse_number(parts[3]) if len(parts) == 4 else None
    if number is None or parts[1] not in ("y", "n") or not ObjectId.is_valid(parts[2]):
        await query.answer()
        return
    if not operator.is_supervisor:
        await query.answer(t(lang, "sup.refused", command="/forget")[:ALERT_LIMIT], show_alert=True)
        return
    if parts[1] == "n":
        await _settle(query, t(lang, "privacy.forget.cancelled"))
        return
    result = await privacy.erase(ObjectId(parts[2]), via="operator_bot", by_operator=operator.id)
    if result.outcome is ErasureOutcome.BUSY:  # the question stays, to be answered again
        await query.answer(t(lang, "privacy.forget.busy")[:ALERT_LIMIT], show_alert=True)
        return
    await _settle(query, erasure_text(lang, result, number))


def erasure_text(lang: str, result: ErasureResult, number: int) -> str:
    """What an erasure did, and what it could not delete, in the supervisor's language."""
    record = result.record
    if record is None:
        return t(lang, "privacy.forget.gone")
    if result.outcome is ErasureOutcome.ALREADY_ERASED:
        return t(lang, "privacy.forget.already", number=number)
    counts = record.counts
    lines = [
        t(
            lang,
            "privacy.forget.done",
            number=number,
            cards=counts.get("cards", 0),
            messages=counts.get("messages", 0),
            threads=counts.get("threads", 0),
        )
    ]
    if record.leftovers:
        lines.append(t(lang, "privacy.leftovers"))
        lines += [t(lang, f"privacy.place.{x.place}", count=x.count or "?") for x in record.leftovers]
    return "\n".join(lines)


async def _settle(query: CallbackQuery, text: str) -> None:
    """The question is answered: its buttons go and the answer takes its place."""
    await query.answer()
    if isinstance(query.message, TgMessage):
        try:
            await query.message.edit_text(text, reply_markup=None)
            return
        except TelegramBadRequest:  # too old to edit: say it in a new message instead
            pass
        await query.message.answer(text)
    elif query.bot is not None:
        await query.bot.send_message(query.from_user.id, text)
