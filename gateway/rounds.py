"""Background work done in rounds: the next round at once while there is more, else after a pause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def in_rounds(one_round: Callable[[], Awaitable[bool]], pause: float, what: str) -> None:
    """Run `one_round` until cancelled: again at once while it answers that there is more, else after `pause`
    seconds; a round that fails is logged, and the next one tries again."""
    while True:
        try:
            more = await one_round()
        except Exception:
            logger.exception("%s failed", what)
            more = False
        if not more:
            await asyncio.sleep(pause)
