"""/template N: the approved WhatsApp templates as buttons, any time; and whether the 24-hour window is open."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from gateway.config import Settings
from gateway.model import Operator
from gateway.storage.mongo import Storage
from operators.lookup import find_thread, live_contact
from operators.texts import t
from operators.window import window_closed


def build_router() -> Router:
    """/template."""
    router = Router(name="templates")
    router.message.register(list_templates, Command("template"))
    return router


async def list_templates(
    message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Storage, settings: Settings
) -> None:
    """`/template N`: each configured template as a button that sends it into #N (the Template buttons' handler)."""
    thread, error = await find_thread(store, operator, lang, command.args, command="template")
    if thread is None:
        await message.answer(error)
        return
    if thread.channel != "whatsapp":
        await message.answer(t(lang, "template.not_whatsapp", number=thread.number))
        return
    templates = settings.whatsapp.templates if settings.whatsapp else ()
    if not templates:
        await message.answer(t(lang, "template.none"))
        return
    contact = await live_contact(store, thread)
    hours = settings.whatsapp.window_hours if settings.whatsapp else 24.0
    closed = contact is not None and window_closed(thread, contact, hours)
    buttons = [
        [InlineKeyboardButton(text=t(lang, "button.template", name=tpl.name), callback_data=f"tpl:{thread.number}:{i}")]
        for i, tpl in enumerate(templates)
    ]
    key = "template.list_closed" if closed else "template.list_open"
    await message.answer(t(lang, key, number=thread.number), reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons))
