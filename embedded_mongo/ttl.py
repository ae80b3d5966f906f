"""TTL indexes: documents whose indexed date is older than `expireAfterSeconds` are deleted by a reaper."""

from __future__ import annotations

import datetime
import logging

from . import keys
from .bounds import EXCLUSIVE, PREFIX, Interval
from .query import decode
from .storage import Storage

logger = logging.getLogger(__name__)

# Deletions per pass and index, so one pass never holds the engine for long.
BATCH = 5000


def reap(storage: Storage, now: datetime.datetime | None = None) -> int:
    """Delete expired documents of every TTL index (in the open transaction); returns how many."""
    now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    deleted = 0
    for coll in list(storage.catalog.values()):
        for index in list(coll.indexes):
            expire = index.spec.expire_after
            if expire is None:
                continue
            cutoff = now - datetime.timedelta(seconds=expire)
            # Dates only (other values never expire), older than the cutoff; an array expires with its oldest.
            interval = Interval(bytes([keys.DATE]), PREFIX, keys.encode(cutoff), EXCLUSIVE, "", "")
            start, end = interval.byte_range(index.spec.directions[0])
            seen: set[int] = set()
            for _key, _id, rid in storage.index_keys(index, start, end, BATCH):
                if rid in seen:
                    continue
                seen.add(rid)
                raw = storage.get_by_rid(coll, rid)
                if raw is not None:
                    storage.delete(coll, rid, decode(raw), raw)
                    deleted += 1
    if deleted:
        logger.debug("TTL reaper deleted %d documents", deleted)
    return deleted
