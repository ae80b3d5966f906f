"""/info N [field value] and the card's Info button: the customer card, and editing it."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery
from aiogram.types import Message as TgMessage

from channels.telegram.filters import Magic
from channels.telegram.limits import join_lines
from gateway.config import Settings
from gateway.contacts import normalize_email, normalize_phone
from gateway.model import Contact, Identity, Operator, Thread, ThreadStatus
from gateway.profiles import Profiles
from gateway.storage.mongo import Storage
from operators.answers import answer_query, button_arg, short
from operators.cards import channel_name, pretty_phone, visitor_lines
from operators.lookup import find_thread, live_contact, may_see
from operators.texts import t

NAME_LIMIT = 200
EDITABLE = ("name", "email", "phone")


def build_router() -> Router:
    """/info and the card's Info button."""
    router = Router(name="info")
    router.message.register(show_info, Command("info"))
    router.callback_query.register(info_button, Magic(F.data.startswith("info:")))
    return router


async def show_info(
    message: TgMessage,
    command: CommandObject,
    operator: Operator,
    lang: str,
    store: Storage,
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


async def info_button(query: CallbackQuery, operator: Operator, lang: str, store: Storage) -> None:
    """The card's Info button."""
    thread, error = await find_thread(store, operator, lang, button_arg(query.data), command="info", allowed=may_see)
    if thread is None:
        await answer_query(query, error)
        return
    await answer_query(query, *await info_view(store, lang, thread))


async def edit_info(
    store: Storage, profiles: Profiles, settings: Settings, lang: str, thread: Thread, field: str, value: str
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


async def info_view(store: Storage, lang: str, thread: Thread) -> list[str]:
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


async def _thread_lines(store: Storage, lang: str, contact: Contact) -> list[str]:
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
