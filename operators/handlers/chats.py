"""/chats, /chat N, /next, /history N, /info N and /close [N], and the card's close, history and info buttons."""

from __future__ import annotations

import math
from collections.abc import Callable

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.types import Message as TgMessage

from channels.telegram.limits import TEXT_LIMIT, join_lines
from gateway.config import Settings
from gateway.contacts import normalize_email, normalize_phone
from gateway.conversations import Conversations, Draft
from gateway.model import Author, Contact, Content, Identity, Operator, OperatorStatus, Thread, ThreadStatus, utcnow
from gateway.profiles import Profiles
from gateway.storage.mongo import Store
from operators.cards import channel_name, message_text, pretty_phone, visitor_lines
from operators.handlers.replies import active_thread, select_thread
from operators.lookup import may_handle, parse_number
from operators.routing import Router as Routing
from operators.texts import t

PAGE = 10  # history messages per page
LINE_LIMIT = 300  # characters of one message shown in a history page
NAME_LIMIT = 200
EDITABLE = ("name", "email", "phone")

Access = Callable[[Operator, Thread], bool]


def build_router() -> Router:
    """Conversation commands and the card's close, history and info buttons."""
    router = Router(name="chats")
    router.message.register(list_chats, Command("chats"))
    router.message.register(choose_chat, Command("chat"))
    router.message.register(take_next, Command("next"))
    router.message.register(show_history, Command("history"))
    router.message.register(show_info, Command("info"))
    router.message.register(close_chat, Command("close"))
    router.callback_query.register(history_button, F.data.startswith("history:"))
    router.callback_query.register(history_page, F.data.startswith("hist:"))
    router.callback_query.register(info_button, F.data.startswith("info:"))
    router.callback_query.register(close_button, F.data.startswith("close:"))
    return router


# -- shared by the command modules ------------------------------------------------------------


def may_see(operator: Operator, thread: Thread) -> bool:
    """Supervisors see every conversation; operators those that are or were theirs."""
    return (
        operator.is_supervisor
        or thread.operator_id == operator.id
        or any(operator.id in (transfer.from_operator, transfer.to_operator) for transfer in thread.transfers)
    )


async def find_thread(
    store: Store,
    operator: Operator,
    lang: str,
    arg: str | None,
    *,
    command: str,
    allowed: Access = may_handle,
    open_only: bool = False,
) -> tuple[Thread | None, str]:
    """The thread an argument names, or why the operator can't have it."""
    number = parse_number(arg)
    if number is None:
        return None, t(lang, "thread.usage", command=command)
    thread = await store.threads.by_number(number)
    if thread is None:
        return None, t(lang, "thread.unknown", number=number)
    if not allowed(operator, thread):
        return None, t(lang, "thread.not_yours", number=number)
    if open_only and not thread.open:
        return None, t(lang, "thread.closed", number=number)
    return thread, ""


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


async def live_contact(store: Store, thread: Thread) -> Contact | None:
    """The card behind a thread (the one it was merged into, if it was)."""
    contact = await store.contacts.get(thread.contact_id)
    return await store.contacts.live(contact) if contact is not None else None


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


# -- /chats, /chat, /next ---------------------------------------------------------------------


async def list_chats(message: TgMessage, operator: Operator, lang: str, store: Store) -> None:
    """The operator's open conversations with unread counts and idle time; the active one marked."""
    threads = await store.threads.find(status=ThreadStatus.ASSIGNED, operator_id=operator.id, limit=50)
    if not threads:
        await message.answer(t(lang, "chats.empty"))
        return
    active = await active_thread(operator, store)
    now = utcnow()
    lines = [t(lang, "chats.title", count=len(threads))]
    for thread in threads:
        contact = await store.contacts.get(thread.contact_id)
        marker = t(lang, "chats.active") if active is not None and active.id == thread.id else ""
        lines.append(
            t(
                lang,
                "chats.line",
                number=thread.number,
                name=contact.display_name if contact else "?",
                channel=channel_name(lang, thread.channel),
                active=marker,
            )
        )
        lines.append(
            t(
                lang,
                "chats.stats",
                unread=thread.unread,
                idle=duration(lang, (now - thread.last_message_at).total_seconds()),
            )
        )
    lines.append(t(lang, "chats.hint"))
    buttons = [InlineKeyboardButton(text=f"#{th.number}", callback_data=f"pick:{th.number}") for th in threads]
    keyboard = InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)])
    parts = join_lines(lines)
    for part in parts[:-1]:
        await message.answer(part)
    await message.answer(parts[-1], reply_markup=keyboard)


async def choose_chat(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Store) -> None:
    """Make a conversation the active one: plain messages go there."""
    thread, error = await find_thread(store, operator, lang, command.args, command="chat", open_only=True)
    if thread is None:
        await message.answer(error)
        return
    if await select_thread(operator, thread.number, store) is None:  # closed or moved meanwhile
        await message.answer(t(lang, "thread.closed", number=thread.number))
        return
    await message.answer(t(lang, "chat.selected", number=thread.number))


async def take_next(
    message: TgMessage, operator: Operator, lang: str, store: Store, routing: Routing, settings: Settings
) -> None:
    """Take the longest-waiting conversation from the queue and make it active."""
    if operator.status is not OperatorStatus.ONLINE:
        await message.answer(t(lang, "next.not_online", status=t(lang, f"status.{operator.status.value}")))
        return
    outcome = await routing.take_next(operator)
    if outcome.thread is None:
        if outcome.error == "queue_empty":
            await message.answer(t(lang, "next.empty"))
            return
        current = await store.operators.get(operator.id) or operator
        if current.status is not OperatorStatus.ONLINE:
            await message.answer(t(lang, "next.not_online", status=t(lang, f"status.{current.status.value}")))
        else:
            await message.answer(
                t(
                    lang,
                    "next.full",
                    load=len(current.chats),
                    capacity=current.capacity(settings.routing.max_chats_per_operator),
                )
            )
        return
    await store.operators.update(operator.id, {"active_thread_id": outcome.thread.id})
    await message.answer(t(lang, "next.taken", number=outcome.thread.number))


# -- /history -----------------------------------------------------------------------------------


async def show_history(message: TgMessage, command: CommandObject, operator: Operator, lang: str, store: Store) -> None:
    """`/history N [page]`: the customer's messages across all their conversations, newest page first."""
    args = (command.args or "").split()
    thread, error = await find_thread(
        store, operator, lang, args[0] if args else None, command="history", allowed=may_see
    )
    if thread is None:
        await message.answer(error)
        return
    page = parse_number(args[1]) if len(args) > 1 else 1
    text, keyboard = await history_view(store, lang, thread, page or 1)
    await message.answer(text, reply_markup=keyboard)


async def history_button(query: CallbackQuery, operator: Operator, lang: str, store: Store) -> None:
    """The card's History button: the newest page."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="history", allowed=may_see)
    if thread is None:
        await answer_query(query, error)
        return
    text, keyboard = await history_view(store, lang, thread, 1)
    await answer_query(query, text, markup=keyboard)


async def history_page(query: CallbackQuery, operator: Operator, lang: str, store: Store) -> None:
    """Older/Newer under a history page (`hist:N:page`): the page is replaced in place."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="history", allowed=may_see)
    page = parse_number(button_arg(query.data, 2))
    if thread is None or page is None:
        await answer_query(query, error or t(lang, "thread.usage", command="history"))
        return
    text, keyboard = await history_view(store, lang, thread, page)
    if isinstance(query.message, TgMessage):
        await query.answer()
        await query.message.edit_text(text, reply_markup=keyboard)
    else:
        await answer_query(query, text, markup=keyboard)


async def history_view(store: Store, lang: str, thread: Thread, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of a customer's history (oldest first within the page) and its Older/Newer buttons."""
    contact = await live_contact(store, thread)
    contact_id = contact.id if contact else thread.contact_id
    name = contact.display_name if contact else "?"
    total = await store.messages.count_for_contact(contact_id)
    if total == 0:
        return t(lang, "history.empty", name=name), None
    pages = math.ceil(total / PAGE)
    page = min(page, pages)
    messages = await store.messages.page_for_contact(contact_id, skip=(page - 1) * PAGE, limit=PAGE)
    threads = await store.threads.many(list({m.thread_id for m in messages}))
    lines = [t(lang, "history.title", name=name, page=page, pages=pages)]
    for m in reversed(messages):
        if m.thread_id in threads:
            lines.append(f"{m.created_at:%d.%m %H:%M} {short(message_text(lang, threads[m.thread_id], m))}")
    buttons = []
    if page < pages:
        buttons.append(
            InlineKeyboardButton(text=t(lang, "history.older"), callback_data=f"hist:{thread.number}:{page + 1}")
        )
    if page > 1:
        buttons.append(
            InlineKeyboardButton(text=t(lang, "history.newer"), callback_data=f"hist:{thread.number}:{page - 1}")
        )
    return "\n".join(lines)[:TEXT_LIMIT], InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


# -- /info ----------------------------------------------------------------------------------------


async def show_info(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Store,
    profiles: Profiles,
    settings: Settings,
) -> None:
    """`/info N` shows the customer card; `/info N name|email|phone value` edits it."""
    args = (command.args or "").split(maxsplit=2)
    thread, error = await find_thread(store, operator, lang, args[0] if args else None, command="info", allowed=may_see)
    if thread is None:
        await message.answer(error)
        return
    if len(args) == 1:
        for part in await info_view(store, lang, thread):
            await message.answer(part)
        return
    if len(args) < 3 or args[1].lower() not in EDITABLE:
        await message.answer(t(lang, "info.usage"))
        return
    await message.answer(await edit_info(store, profiles, settings, lang, thread, args[1].lower(), args[2]))


async def info_button(query: CallbackQuery, operator: Operator, lang: str, store: Store) -> None:
    """The card's Info button."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="info", allowed=may_see)
    if thread is None:
        await answer_query(query, error)
        return
    await answer_query(query, *await info_view(store, lang, thread))


async def edit_info(
    store: Store, profiles: Profiles, settings: Settings, lang: str, thread: Thread, field: str, value: str
) -> str:
    """Set a name, or add an e-mail or phone, after checking it; returns what to tell the operator."""
    contact = await live_contact(store, thread)
    if contact is None:
        return t(lang, "thread.unknown", number=thread.number)
    value = value.strip()
    if field == "name":
        if not 0 < len(value) <= NAME_LIMIT:
            return t(lang, "info.bad_name", limit=NAME_LIMIT)
        await profiles.update_contact(contact, name=value)
        shown = value
    elif field == "email":
        email = normalize_email(value)
        if email is None:
            return t(lang, "info.bad_email", value=value)
        await profiles.update_contact(contact, email=email)
        shown = email
    else:
        phone = normalize_phone(value, settings.contacts.default_region)
        if phone is None:
            return t(lang, "info.bad_phone", value=value)
        await profiles.update_contact(contact, phone=phone)
        shown = pretty_phone(phone)
    return t(lang, "info.saved", number=thread.number, field=t(lang, f"info.field_{field}"), value=shown)


async def info_view(store: Store, lang: str, thread: Thread) -> list[str]:
    """The full customer card, as one or more Telegram messages."""
    contact = await live_contact(store, thread)
    if contact is None:
        return [t(lang, "thread.unknown", number=thread.number)]
    lines = [t(lang, "info.title", name=contact.display_name, number=thread.number)]
    names = [
        n
        for n in dict.fromkeys(
            [
                contact.name,
                *(i.display_name for i in contact.identities),
                *(f"@{i.username}" for i in contact.identities if i.username),
            ]
        )
        if n
    ]
    if names:
        lines.append(t(lang, "info.names", value=", ".join(names)))
    for phone in contact.phones:
        verified = f" {t(lang, 'info.verified')}" if phone in contact.verified_phones else ""
        lines.append(t(lang, "card.phone", value=pretty_phone(phone)) + verified)
    lines += [t(lang, "info.other_phone", value=phone) for phone in contact.other_phones]
    lines += [t(lang, "card.email", value=email) for email in contact.emails]
    if contact.language:
        lines.append(t(lang, "card.language", value=contact.language))
    if contact.identities:
        lines.append(t(lang, "info.channels"))
        lines += [_identity_line(lang, identity) for identity in contact.identities]
    lines += _attribute_lines(lang, contact)
    if contact.notes:
        lines.append(t(lang, "info.notes"))
        lines += [
            t(
                lang,
                "info.note",
                text=short(note.text),
                author=note.author_name or "?",
                date=f"{note.created_at:%d.%m.%Y}",
            )
            for note in contact.notes[-10:]
        ]
    lines += _visitor_lines(lang, contact)
    lines += await _thread_lines(store, lang, contact)
    if contact.blocked:
        lines.append(t(lang, "card.blocked"))
    lines.append(t(lang, "info.edit_hint", number=thread.number))
    return join_lines(lines)


def _identity_line(lang: str, identity: Identity) -> str:
    if identity.channel == "whatsapp":
        who = pretty_phone(identity.external_id)
    elif identity.username:
        who = f"@{identity.username}"
    elif identity.display_name:
        who = identity.display_name
    else:  # a widget visitor's id is a long token: its start tells two browsers apart
        who = identity.external_id[:8]
    state = (
        t(lang, "info.reachable")
        if identity.reachable
        else t(lang, "info.unreachable", reason=identity.unreachable_reason or "?")
    )
    return t(lang, "info.identity", channel=channel_name(lang, identity.channel), who=who, state=state)


def _attribute_lines(lang: str, contact: Contact) -> list[str]:
    keys = list(dict.fromkeys([*contact.attributes, *contact.attribute_conflicts]))
    if not keys:
        return []
    lines = [t(lang, "info.attributes")]
    for key in keys:
        conflict = contact.attribute_conflicts.get(key)
        if isinstance(conflict, list | tuple) and len(conflict) > 1:
            lines.append(t(lang, "info.conflict", name=key, values=" | ".join(short(str(v), 100) for v in conflict)))
            continue
        value = contact.attributes.get(key, conflict)
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        lines.append(t(lang, "info.attribute", name=key, value=short(shown, 200)))
    return lines


def _visitor_lines(lang: str, contact: Contact) -> list[str]:
    lines = visitor_lines(lang, contact, full=True)
    return [t(lang, "info.visitor"), *lines] if lines else []


async def _thread_lines(store: Store, lang: str, contact: Contact) -> list[str]:
    threads = await store.threads.find(contact_id=contact.id, limit=10)
    if not threads:
        return []
    names = {o.id: o.name for o in await store.operators.all(active_only=False)}
    lines = [t(lang, "info.threads")]
    for thread in sorted(threads, key=lambda th: th.number, reverse=True):
        if thread.status is ThreadStatus.ASSIGNED:
            status = t(lang, "info.thread_assigned", operator=names.get(thread.operator_id or 0, "?"))
        else:
            status = t(lang, f"info.thread_{thread.status.value}")
        lines.append(
            t(
                lang,
                "info.thread",
                number=thread.number,
                channel=channel_name(lang, thread.channel),
                date=f"{thread.created_at:%d.%m.%Y}",
                status=status,
            )
        )
    return lines


# -- /close ---------------------------------------------------------------------------------------


async def close_chat(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Store,
    conversations: Conversations,
    settings: Settings,
) -> None:
    """`/close [N]`: N defaults to the active conversation, or the only one."""
    if command.args:
        thread, error = await find_thread(store, operator, lang, command.args, command="close")
        if thread is None:
            await message.answer(error)
            return
    else:
        thread = await active_thread(operator, store)
        if thread is None:
            await _ask_which(message, operator, lang, store)
            return
    await message.answer(await close_thread(store, conversations, settings, lang, operator, thread))


async def close_button(
    query: CallbackQuery, operator: Operator, lang: str, store: Store, conversations: Conversations, settings: Settings
) -> None:
    """The card's Close button (and the buttons of the "which one?" question)."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="close")
    if thread is None:
        await answer_query(query, error)
        return
    await answer_query(query, await close_thread(store, conversations, settings, lang, operator, thread))


async def close_thread(
    store: Store, conversations: Conversations, settings: Settings, lang: str, operator: Operator, thread: Thread
) -> str:
    """Send the configured closing message (never to a blocked customer), then close; returns the confirmation."""
    if not thread.open:
        return t(lang, "close.already", number=thread.number)
    contact = await live_contact(store, thread)
    text = closing_message(settings, contact) if contact is not None and not contact.blocked else None
    if text:
        await conversations.send(thread, Draft(Content(text=text), author=Author.SYSTEM))
    if await conversations.close(thread, by=operator.id) is None:
        return t(lang, "close.already", number=thread.number)
    return t(lang, "close.done_message" if text else "close.done", number=thread.number)


def closing_message(settings: Settings, contact: Contact) -> str | None:
    """The closing message in the customer's language (or the default language), if one is configured."""
    routing = settings.routing
    language = (contact.language or routing.default_language).split("-")[0].lower()
    return routing.closing_message.get(language) or routing.closing_message.get(routing.default_language)


async def _ask_which(message: TgMessage, operator: Operator, lang: str, store: Store) -> None:
    threads = await store.threads.find(status=ThreadStatus.ASSIGNED, operator_id=operator.id, limit=50)
    if not threads:
        await message.answer(t(lang, "close.none"))
        return
    buttons = [InlineKeyboardButton(text=f"#{th.number}", callback_data=f"close:{th.number}") for th in threads]
    await message.answer(
        t(lang, "close.which", count=len(threads)),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)]),
    )
