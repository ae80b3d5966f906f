"""/help, the bot menu, and a helpful answer to unknown commands."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from gateway.model import Operator
from operators.texts import LANGUAGES, t

OPERATOR_COMMANDS = (
    "chats",
    "chat",
    "next",
    "history",
    "info",
    "close",
    "transfer",
    "note",
    "block",
    "unblock",
    "canned",
    "template",
    "tr",
    "search",
    "online",
    "away",
    "offline",
    "status",
    "help",
)
SUPERVISOR_COMMANDS = (
    "queue", "operators", "all", "assign", "stats", "operator", "duplicates", "merge", "unmerge", "deadletters",
    "export", "forget",
)  # fmt: skip


def build_router() -> Router:
    """Include after every command router: it answers any command nobody else handled."""
    router = Router(name="help")
    router.message.register(show_help, Command("help"))
    router.message.register(unknown_command, Magic(F.text.startswith("/")))
    return router


def help_text(lang: str, operator: Operator) -> str:
    lines = [t(lang, "help.operator")] + [f"/{c} — {t(lang, f'cmd.{c}')}" for c in OPERATOR_COMMANDS]
    if operator.is_supervisor:
        lines += ["", t(lang, "help.supervisor")] + [f"/{c} — {t(lang, f'cmd.{c}')}" for c in SUPERVISOR_COMMANDS]
    lines += ["", t(lang, "help.activity"), "", t(lang, "help.indicators")]
    return "\n".join(lines)


async def show_help(message: TgMessage, operator: Operator, lang: str) -> None:
    await message.answer(help_text(lang, operator))


async def unknown_command(message: TgMessage, operator: Operator, lang: str) -> None:
    command = (message.text or "").split()[0]
    await message.answer(f"{t(lang, 'help.unknown', command=command)}\n\n{help_text(lang, operator)}")


async def set_menu(bot: Bot, operators: list[Operator]) -> None:
    """Publish the command menu: operator commands for everyone, supervisor commands for supervisors."""
    for lang in LANGUAGES:
        code = None if lang == "en" else lang
        commands = [BotCommand(command=c, description=t(lang, f"cmd.{c}")) for c in OPERATOR_COMMANDS]
        await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)
        extra = [BotCommand(command=c, description=t(lang, f"cmd.{c}")) for c in SUPERVISOR_COMMANDS]
        for operator in operators:
            if operator.is_supervisor:
                await bot.set_my_commands(
                    commands + extra, scope=BotCommandScopeChat(chat_id=operator.id), language_code=code
                )
