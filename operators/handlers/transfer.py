"""/transfer N @operator|group [comment], and the card's Transfer button with its picker."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from channels.telegram.limits import CALLBACK_DATA_LIMIT
from gateway.config import Settings
from gateway.model import Operator, Thread
from gateway.storage.mongo import Storage
from operators.answers import answer_query, button_arg
from operators.lookup import find_operator, find_thread, parse_index
from operators.routing import Routing
from operators.texts import t


def build_router() -> Router:
    """/transfer, the card's Transfer button and its picker."""
    router = Router(name="transfer")
    router.message.register(transfer_command, Command("transfer"))
    router.callback_query.register(show_picker, Magic(F.data.startswith("transfer:")))
    router.callback_query.register(pick_target, Magic(F.data.startswith("xfer:")))
    return router


async def transfer_command(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
    routing: Routing,
    settings: Settings,
) -> None:
    """Move a conversation to an operator or a group; the comment is for operators only."""
    args = (command.args or "").split(maxsplit=2)
    if len(args) < 2:
        await message.answer(t(lang, "transfer.usage"))
        return
    thread, error = await find_thread(store, operator, lang, args[0], command="transfer")
    if thread is None:
        await message.answer(error)
        return
    to_operator, group = await find_target(store, args[1])
    if to_operator is None and group is None:
        await message.answer(t(lang, "transfer.unknown_target", target=args[1]))
        return
    comment = args[2].strip() if len(args) > 2 else None
    await message.answer(
        await transfer_thread(
            store, routing, settings, lang, operator, thread, to_operator=to_operator, group=group, comment=comment
        )
    )


async def find_target(store: Storage, ref: str) -> tuple[Operator | None, str | None]:
    """An operator (by @username, name or id), else a group some operator belongs to."""
    operator = await find_operator(store, ref)
    if operator is not None:
        return operator, None
    groups = {g.casefold(): g for g in await known_groups(store)}
    return None, groups.get(ref.casefold())


async def known_groups(store: Storage) -> list[str]:
    """Every group some active operator belongs to."""
    return sorted({group for operator in await store.operators.all() for group in operator.groups})


async def transfer_thread(
    store: Storage,
    routing: Routing,
    settings: Settings,
    lang: str,
    operator: Operator,
    thread: Thread,
    *,
    to_operator: Operator | None = None,
    group: str | None = None,
    comment: str | None = None,
) -> str:
    """Transfer, and say what happened (or why nothing did)."""
    outcome = await routing.transfer(
        thread, to_operator=to_operator, to_group=group, comment=comment or None, by=operator.id
    )
    number = thread.number
    if outcome.thread is None:
        if outcome.error == "not_available" and to_operator is not None:
            target = await store.operators.get(to_operator.id) or to_operator
            return t(
                lang,
                "transfer.not_available",
                name=target.name,
                number=number,
                status=t(lang, f"status.{target.status.value}"),
                load=len(target.chats),
                capacity=target.capacity(settings.routing.max_chats_per_operator),
            )
        if outcome.error == "same_operator" and to_operator is not None:
            return t(lang, "transfer.same_operator", number=number, name=to_operator.name)
        if outcome.error == "closed":
            return t(lang, "transfer.closed", number=number)
        return t(lang, "transfer.changed", number=number)
    if to_operator is not None:
        return t(lang, "transfer.to_operator", number=number, name=to_operator.name)
    owner = await store.operators.get(outcome.thread.operator_id) if outcome.thread.operator_id else None
    if owner is not None:
        return t(lang, "transfer.to_group_assigned", number=number, group=group, name=owner.name)
    return t(lang, "transfer.to_group_queued", number=number, group=group)


async def show_picker(query: CallbackQuery, operator: Operator, lang: str, store: Storage, settings: Settings) -> None:
    """The card's Transfer button: online operators with their load, and the groups."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="transfer", open_only=True)
    if thread is None:
        await answer_query(query, error)
        return
    default = settings.routing.max_chats_per_operator
    online = sorted((o for o in await store.operators.online() if o.id != thread.operator_id), key=lambda o: o.name)
    rows = [
        [
            InlineKeyboardButton(
                text=t(lang, "transfer.operator_button", name=o.name, load=len(o.chats), capacity=o.capacity(default)),
                callback_data=f"xfer:{thread.number}:o:{o.id}",
            )
        ]
        for o in online
    ]
    for group in await known_groups(store):
        data = f"xfer:{thread.number}:g:{group}"
        if len(data.encode()) <= CALLBACK_DATA_LIMIT:  # a longer group name still works with /transfer
            rows.append([InlineKeyboardButton(text=t(lang, "transfer.group_button", group=group), callback_data=data)])
    if not rows:
        await answer_query(query, t(lang, "transfer.nobody", number=thread.number))
        return
    await answer_query(
        query, t(lang, "transfer.pick", number=thread.number), markup=InlineKeyboardMarkup(inline_keyboard=rows)
    )


async def pick_target(
    query: CallbackQuery, operator: Operator, lang: str, store: Storage, routing: Routing, settings: Settings
) -> None:
    """A target picked in the picker (`xfer:N:o:<id>` or `xfer:N:g:<group>`); the picker shows the result."""
    parts = (query.data or "").split(":", 3)
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="transfer")
    if thread is None or len(parts) != 4:
        await answer_query(query, error or t(lang, "transfer.usage"))
        return
    kind, ref = parts[2], parts[3]
    operator_id = parse_index(ref, low=1) if kind == "o" else None
    to_operator = await store.operators.get(operator_id) if operator_id is not None else None
    group = ref if kind == "g" and ref in await known_groups(store) else None
    if to_operator is None and group is None:
        text = t(lang, "transfer.unknown_target", target=ref)
    else:
        text = await transfer_thread(
            store, routing, settings, lang, operator, thread, to_operator=to_operator, group=group
        )
    if isinstance(query.message, TgMessage):
        await query.answer()
        await query.message.edit_text(text)
    else:
        await answer_query(query, text)
