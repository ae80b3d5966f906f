"""Finding what a command or a message is about: threads by number, operators by name, the active conversation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from gateway.inputs import parse_int
from gateway.model import Contact, Operator, Thread
from gateway.storage.mongo import Storage
from operators.texts import t


def parse_number(text: str | None) -> int | None:
    """`17` or `#17` -> 17; anything else (0, '²', a number beyond int64) -> None."""
    return parse_index((text or "").strip().removeprefix("#"), low=1)


def parse_index(text: str | None, *, low: int = 0) -> int | None:
    """A non-negative integer (at least `low`) written in ASCII digits that fits int64; None otherwise."""
    try:
        return parse_int((text or "").strip(), low=low)
    except ValueError:
        return None


async def find_operator(store: Storage, ref: str) -> Operator | None:
    """An operator named by @username, their configured name (any case) or Telegram id."""
    ref = ref.strip()
    if ref.startswith("@"):
        return await store.operators.by_username(ref)
    with contextlib.suppress(ValueError):
        return await store.operators.get(parse_int(ref))
    wanted = ref.casefold()
    matches = [o for o in await store.operators.all() if o.name.casefold() == wanted]
    return matches[0] if len(matches) == 1 else await store.operators.by_username(ref)


def may_handle(operator: Operator, thread: Thread) -> bool:
    """Operators act on their own conversations; supervisors on any."""
    return operator.is_supervisor or thread.operator_id == operator.id


Access = Callable[[Operator, Thread], bool]


def may_see(operator: Operator, thread: Thread) -> bool:
    """Supervisors see every conversation; operators those that are or were theirs."""
    return (
        operator.is_supervisor
        or thread.operator_id == operator.id
        or any(operator.id in (transfer.from_operator, transfer.to_operator) for transfer in thread.transfers)
    )


async def find_thread(
    store: Storage,
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


async def live_contact(store: Storage, thread: Thread) -> Contact | None:
    """The card behind a thread (the one it was merged into, if it was)."""
    contact = await store.contacts.get(thread.contact_id)
    return await store.contacts.live(contact) if contact is not None else None


async def active_thread(operator: Operator, store: Storage) -> Thread | None:
    """The conversation a plain message goes to: the one selected with /chat, or the only one open."""
    if operator.active_thread_id is not None:
        thread = await store.threads.get(operator.active_thread_id)
        if thread is not None and thread.open and (thread.operator_id == operator.id or operator.is_supervisor):
            return thread
    if len(operator.chats) == 1:
        thread = await store.threads.get(operator.chats[0])
        if thread is not None and thread.open and thread.operator_id == operator.id:
            return thread
    return None


async def select_thread(operator: Operator, number: int, store: Storage) -> Thread | None:
    """Make a conversation the operator's active one (theirs, or any open one for a supervisor)."""
    thread = await store.threads.by_number(number)
    if thread is None or not thread.open or (thread.operator_id != operator.id and not operator.is_supervisor):
        return None
    await store.operators.update(operator.id, {"active_thread_id": thread.id})
    return thread
