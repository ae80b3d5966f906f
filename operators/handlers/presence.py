"""Going online, away and offline (commands and keyboard buttons); /start and /status."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from gateway.config import Settings
from gateway.model import Operator, OperatorStatus
from operators.presence import Presence
from operators.texts import CATALOG, LANGUAGES, t


def build_router() -> Router:
    router = Router(name="presence")
    router.message.register(start, CommandStart())
    router.message.register(show_status, Command("status"))
    for status in OperatorStatus:
        buttons = {CATALOG[lang][f"button.{status.value}"] for lang in LANGUAGES}
        router.message.register(_setter(status), Command(status.value))
        router.message.register(_setter(status), Magic(F.text.in_(buttons)))
    return router


def status_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        resize_keyboard=True,
        is_persistent=True,
        keyboard=[[KeyboardButton(text=t(lang, f"button.{status.value}")) for status in OperatorStatus]],
    )


async def start(message: TgMessage, operator: Operator, lang: str) -> None:
    await message.answer(
        t(lang, "start", name=operator.name, status=t(lang, f"status.{operator.status.value}")),
        reply_markup=status_keyboard(lang),
    )


async def show_status(message: TgMessage, operator: Operator, lang: str, settings: Settings) -> None:
    await message.answer(_summary(lang, operator, settings), reply_markup=status_keyboard(lang))


def _setter(status: OperatorStatus):
    async def change(message: TgMessage, operator: Operator, lang: str, presence: Presence, settings: Settings) -> None:
        if operator.status is status:
            await message.answer(
                t(lang, "presence.same", status=t(lang, f"status.{status.value}")), reply_markup=status_keyboard(lang)
            )
            return
        updated = await presence.set_status(operator.id, status) or operator
        await message.answer(_summary(lang, updated, settings), reply_markup=status_keyboard(lang))

    change.__name__ = f"go_{status.value}"
    return change


def _summary(lang: str, operator: Operator, settings: Settings) -> str:
    return t(
        lang,
        "presence.changed",
        status=t(lang, f"status.{operator.status.value}"),
        load=len(operator.chats),
        capacity=operator.capacity(settings.routing.max_chats_per_operator),
    )
