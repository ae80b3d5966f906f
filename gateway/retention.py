"""The privacy loop: recent erasures swept once more, and closed conversations expired after privacy.retention_days.

Every round does a bounded amount of indexed work (`batch_size` conversations, their messages a few hundred
at a time) and then sleeps, so the gateway never waits for it; every step is safe to repeat and safe to run in
every process at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo.errors import PyMongoError

from gateway.config import PrivacySettings
from gateway.logs import log_context
from gateway.model import Thread, utcnow
from gateway.privacy import BATCH, Privacy
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

# Between two rounds while expired conversations are still waiting: a breath, not the full interval.
BACKLOG_PAUSE = 1.0


class Retention:
    """Runs the privacy loop's rounds."""

    def __init__(self, store: Storage, privacy: Privacy, settings: PrivacySettings) -> None:
        self.store = store
        self.privacy = privacy
        self.settings = settings

    async def run(self) -> None:
        """Round after round until cancelled; a storage failure waits for the next round."""
        while True:
            try:
                more = await self.round()
            except PyMongoError as err:
                logger.warning("privacy round not done (%s); trying again in the next one", err)
                more = False
            interval = self.settings.interval_seconds
            await asyncio.sleep(min(BACKLOG_PAUSE, interval) if more else interval)

    async def round(self) -> bool:
        """One round; True when more conversations are due than one round takes."""
        await self.privacy.sweep_again()
        if self.settings.retention_days is None:
            return False
        now = utcnow()
        cutoff = now - timedelta(days=self.settings.retention_days)
        # Anonymized threads hold no personal data; deleting, retention takes them too once they are old enough.
        threads = await self.store.threads.expired(
            cutoff, limit=self.settings.batch_size, anonymized_too=not self.settings.anonymize
        )
        for thread in threads:
            await self._expire(thread, cutoff, now)
        return len(threads) == self.settings.batch_size

    async def _expire(self, thread: Thread, cutoff: datetime, now: datetime) -> None:
        with log_context(thread=thread.number, channel=thread.channel):
            await self.store.relay.forget_threads([thread.id])
            if self.settings.anonymize:
                stand_in = ObjectId()
                await self.store.messages.anonymize_thread(thread.id, stand_in, now, batch=BATCH)
                await self.store.threads.anonymize(thread, stand_in, now)
                logger.info("thread #%d closed before %s: kept as timings only", thread.number, f"{cutoff:%Y-%m-%d}")
            else:
                await self.store.messages.delete_of(thread_ids=[thread.id], batch=BATCH)
                await self.store.threads.delete([thread.id])
                logger.info("thread #%d closed before %s: deleted", thread.number, f"{cutoff:%Y-%m-%d}")
            if thread.erased_at is None and await self.store.threads.count_for(thread.contact_id) == 0:
                await self._expire_card(thread.contact_id, cutoff)

    async def _expire_card(self, contact_id: ObjectId, cutoff: datetime) -> None:
        """A card whose last conversation expired goes too, unless it changed since the cutoff."""
        card = await self.store.contacts.get(contact_id)
        if card is None or card.merged_into is not None or card.updated_at >= cutoff:
            return
        result = await self.privacy.erase(card.id, via="retention")
        logger.info("contact %s had no conversation left: %s", card.id, result.outcome)
