"""Inputs the gateway accepted but could not understand: kept with the reason, counted, never retried forever."""

from __future__ import annotations

import logging

from gateway.metrics import Metrics
from gateway.model import utcnow
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)


class DeadLetters:
    """Keeps what could not be understood, so nothing is dropped silently and senders need not retry it."""

    def __init__(self, store: Storage, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    async def keep(self, source: str, reason: str, payload: str) -> None:
        """Store one input with the reason it was not understood (`source` is e.g. "telegram:support")."""
        await self.store.dead_letters.add(source, _storable(reason), _storable(payload), utcnow())
        self.metrics.dead_letters.labels(source.split(":", 1)[0]).inc()
        logger.warning("input from %s kept as a dead letter: %s", source, reason)


def _storable(text: str) -> str:
    # Whatever it was, it must fit a BSON string: lone surrogates become U+FFFD.
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
