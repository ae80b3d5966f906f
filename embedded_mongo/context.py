"""What a command handler runs with: who asked (CommandContext), what it may use (Services), and how it says
"no data yet, wait" (AwaitData). Handlers depend on this, not on the dispatcher in commands.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .cursors import CursorTable
    from .storage import Storage


@dataclass
class CommandContext:
    """Who is running a command, and how."""

    connection_id: int
    me: str = "127.0.0.1:27017"
    session: bytes | None = None
    final: bool = False  # an awaiting getMore's last attempt: answer even without new data
    raw_documents: dict[str, list[bytes]] | None = None
    thread: Any = None  # the engine thread running the command, for serverStatus


@dataclass
class AwaitData:
    """A tailable getMore found nothing yet: the server waits for new history, then runs it again."""

    seconds: float
    seen_ts: int


class Services(Protocol):
    """The engine as its command handlers see it."""

    storage: Storage
    cursors: CursorTable
    helper: Any  # a mongomock collection, for mongomock's projection and aggregation helpers
