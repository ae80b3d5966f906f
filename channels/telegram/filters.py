"""Magic filters (`F...`) that aiogram evaluates on the event loop.

aiogram runs every filter that is not a coroutine, `F`'s included, in a worker thread: a thread hop for each
filter an update meets. Our routers wrap their magic filters in `Magic`, and their own filters are coroutines.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from aiogram.utils.magic_filter import MagicFilter


class Magic(Filter):
    """A magic filter, awaited on the event loop; it passes what the bare filter would (`.as_()` results too)."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> Any:
        return self.magic.resolve(event)
