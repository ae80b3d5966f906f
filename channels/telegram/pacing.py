"""Spacing calls into a chat to stay inside Telegram's flood limit for groups instead of running into 429s."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

# Telegram lets a bot post about 20 messages a minute into one group (creating a topic counts as one).
GROUP_MESSAGES_PER_MINUTE = 20
WINDOW = 60.0


class Pace:
    """At most `per_minute` calls in any 60 s: a call that would exceed it waits until the oldest leaves the window."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = asyncio.Lock()

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def wait(self) -> None:
        """Return when one more call fits in the window (and count it)."""
        async with self._lock:
            while True:
                now = self._now()
                while self._calls and self._calls[0] <= now - WINDOW:
                    self._calls.popleft()
                if len(self._calls) < self.per_minute:
                    self._calls.append(now)
                    return
                await self._sleep(self._calls[0] + WINDOW - now)
