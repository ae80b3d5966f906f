"""Reading command arguments: thread numbers (`17` or `#17`) and operators (@username, name or id)."""

from __future__ import annotations

from gateway.model import Operator, Thread
from gateway.storage.mongo import Store


def parse_number(text: str | None) -> int | None:
    """`17` or `#17` -> 17; anything else -> None."""
    raw = (text or "").strip().lstrip("#")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


async def find_operator(store: Store, ref: str) -> Operator | None:
    """An operator named by @username, their configured name (any case) or Telegram id."""
    ref = ref.strip()
    if ref.startswith("@"):
        return await store.operators.by_username(ref)
    if ref.lstrip("-").isdigit():
        return await store.operators.get(int(ref))
    wanted = ref.casefold()
    matches = [o for o in await store.operators.all() if o.name.casefold() == wanted]
    return matches[0] if len(matches) == 1 else await store.operators.by_username(ref)


def may_handle(operator: Operator, thread: Thread) -> bool:
    """Operators act on their own conversations; supervisors on any."""
    return operator.is_supervisor or thread.operator_id == operator.id
