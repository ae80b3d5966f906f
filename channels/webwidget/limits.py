"""Abuse limits shared by every widget socket: rates per visitor and per client address, in bounded memory."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.config import WebWidgetSettings

# Enough for every visitor and address active within a minute on a busy site; beyond it the
# least recently seen keys are forgotten (they start again with a full allowance).
MAX_KEYS = 100_000


class RateLimit:
    """Token buckets by key: `per_minute` events a minute, in bursts of up to `per_minute`.

    A bucket left alone for a minute is full again, which is the same as having none, so idle keys
    are dropped; at most `max_keys` are kept.
    """

    def __init__(
        self, per_minute: int, *, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, when last updated); least recently updated first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str) -> bool:
        """Take one event from `key`'s allowance; False (and nothing taken) when it is spent."""
        now = self._clock()
        self._expire(now)
        tokens, updated = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.per_second)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def _expire(self, now: float) -> None:
        while self._buckets:
            key, (_, updated) = next(iter(self._buckets.items()))
            if now - updated < 60.0:
                return
            del self._buckets[key]


class Limits:
    """The widget's rate limits, per visitor and per client address, from [webwidget]."""

    def __init__(self, settings: WebWidgetSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.frames_by_visitor = RateLimit(settings.frames_per_minute, clock=clock)
        self.frames_by_address = RateLimit(settings.frames_per_minute_per_ip, clock=clock)
        self.messages_by_visitor = RateLimit(settings.messages_per_minute, clock=clock)
        self.messages_by_address = RateLimit(settings.messages_per_minute_per_ip, clock=clock)
        self.new_visitors_by_address = RateLimit(settings.visitors_per_minute_per_ip, clock=clock)

    def frame(self, address: str, visitor: str | None) -> bool:
        """Whether one more frame of any kind may be handled (charged to both, like every frame)."""
        by_address = self.frames_by_address.allow(address)
        by_visitor = visitor is None or self.frames_by_visitor.allow(visitor)
        return by_address and by_visitor

    def message(self, address: str, visitor: str) -> bool:
        """Whether one more message may be stored."""
        by_address = self.messages_by_address.allow(address)
        by_visitor = self.messages_by_visitor.allow(visitor)
        return by_address and by_visitor

    def new_visitor(self, address: str) -> bool:
        """Whether one more visitor token may be issued to this address."""
        return self.new_visitors_by_address.allow(address)
