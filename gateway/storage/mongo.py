"""The MongoDB connection (real or embedded), its indexes and the repositories over it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from gateway.config import ConfigError, StorageSettings
from gateway.storage.canned import CannedRepo
from gateway.storage.contacts import ContactRepo
from gateway.storage.dead_letters import DeadLetterRepo
from gateway.storage.duplicates import DuplicateRepo
from gateway.storage.erasures import ErasureRepo
from gateway.storage.leases import LeaseRepo
from gateway.storage.merges import MergeRepo
from gateway.storage.messages import MessageRepo
from gateway.storage.operators import OperatorRepo
from gateway.storage.ratings import RatingRepo
from gateway.storage.relay import RelayRepo
from gateway.storage.threads import ThreadRepo
from gateway.storage.updates import HandledUpdates

if TYPE_CHECKING:
    from embedded_mongo import EmbeddedMongo, EngineProcess

logger = logging.getLogger(__name__)

INDEXES: dict[str, list[IndexModel]] = {
    "contacts": [
        # One contact per channel identity: the unique multikey index makes a
        # concurrent first message from the same person create one card, not two.
        # Partial, so cards merged away (left with no identities) do not collide on a null key.
        IndexModel(
            [("identities.key", ASCENDING)],
            unique=True,
            partialFilterExpression={"identities.key": {"$type": "string"}},
            name="identity",
        ),
        IndexModel([("phones", ASCENDING)], name="phones"),
        IndexModel([("emails", ASCENDING)], name="emails"),
        IndexModel([("updated_at", DESCENDING)], name="recent"),
        # Erasing a card takes the cards merged into it too.
        IndexModel([("merged_into", ASCENDING)], name="merged_into"),
        # Cards whose duplicate check a stopped process never made.
        IndexModel([("unchecked_since", ASCENDING)], sparse=True, name="unchecked"),
    ],
    "threads": [
        IndexModel([("number", ASCENDING)], unique=True, name="number"),
        # At most one open thread per contact, enforced by the server.
        IndexModel(
            [("contact_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"open": True},
            name="one_open_per_contact",
        ),
        IndexModel([("contact_id", ASCENDING), ("created_at", DESCENDING)], name="by_contact"),
        IndexModel([("status", ASCENDING), ("queued_at", ASCENDING)], name="queue"),
        IndexModel([("operator_id", ASCENDING), ("open", ASCENDING)], name="by_operator"),
        IndexModel([("open", ASCENDING), ("number", ASCENDING)], name="open"),
        IndexModel([("last_message_at", DESCENDING)], name="recent"),
        # Supervisor KPIs select threads by when they were opened, assigned or closed.
        IndexModel([("created_at", ASCENDING)], name="created"),
        IndexModel([("first_assigned_at", ASCENDING)], name="first_assigned"),
        IndexModel([("closed_at", ASCENDING)], name="closed"),
        # Retention with anonymize = true: closed threads not yet reduced to their timings, longest closed first.
        IndexModel([("erased_at", ASCENDING), ("closed_at", ASCENDING)], name="retention"),
        IndexModel([("topic_id", ASCENDING), ("topic_chat_id", ASCENDING)], name="topic"),
        # Who may see a thread in /search: operators it was transferred from or to.
        IndexModel([("transfers.from_operator", ASCENDING)], name="transferred_from"),
        IndexModel([("transfers.to_operator", ASCENDING)], name="transferred_to"),
        # Satisfaction ratings in /stats, by when they were given.
        IndexModel([("csat.at", ASCENDING)], name="rated"),
    ],
    "messages": [
        # Idempotent ingestion: a re-delivered webhook hits this and stores nothing.
        IndexModel(
            [("channel", ASCENDING), ("account", ASCENDING), ("channel_message_id", ASCENDING)],
            unique=True,
            partialFilterExpression={"channel_message_id": {"$type": "string"}},
            name="channel_message",
        ),
        IndexModel([("thread_id", ASCENDING), ("created_at", ASCENDING)], name="by_thread"),
        IndexModel([("contact_id", ASCENDING), ("created_at", ASCENDING)], name="by_contact"),
        # /history N customer|operator|notes|actions, and /history N media.
        IndexModel(
            [("contact_id", ASCENDING), ("direction", ASCENDING), ("created_at", ASCENDING)],
            name="by_contact_direction",
        ),
        IndexModel([("contact_id", ASCENDING), ("kind", ASCENDING), ("created_at", ASCENDING)], name="by_contact_kind"),
        # What a customer sees again is what went through their own identity (widget history).
        IndexModel([("identity", ASCENDING), ("created_at", ASCENDING)], name="by_identity"),
        # A text search walks messages newest first and stops at the first page of matches.
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="recent"),
        IndexModel(
            [("next_attempt_at", ASCENDING)],
            partialFilterExpression={"status": "queued"},
            name="outbox",
        ),
    ],
    "early_reports": [
        IndexModel(
            [("channel", ASCENDING), ("account", ASCENDING), ("channel_message_id", ASCENDING)], name="channel_message"
        ),
        # Reports for messages that never got their id stored are dropped after a day.
        IndexModel([("at", ASCENDING)], expireAfterSeconds=86400, name="expiry"),
    ],
    "operators": [
        IndexModel([("username", ASCENDING)], name="username"),
        IndexModel([("status", ASCENDING)], name="status"),
        IndexModel([("name", ASCENDING)], name="name"),
        IndexModel([("active", ASCENDING), ("name", ASCENDING)], name="active"),
    ],
    "relay": [
        IndexModel([("chat_id", ASCENDING), ("message_id", ASCENDING)], unique=True, name="chat_message"),
        IndexModel([("chat_id", ASCENDING), ("gateway_message_id", ASCENDING)], name="copies"),
        IndexModel([("gateway_message_id", ASCENDING)], name="by_message"),
        # What the operator bot showed of a thread, found when the thread is erased or expires.
        IndexModel([("thread_id", ASCENDING)], name="by_thread"),
    ],
    "relay_showings": [
        IndexModel([("thread_id", ASCENDING)], name="by_thread"),
        # Long enough for every late or repeated showing (a sweep, a chat transferred back); then forgotten.
        IndexModel([("at", ASCENDING)], expireAfterSeconds=30 * 86400, name="expiry"),
    ],
    "signals": [IndexModel([("at", ASCENDING)], expireAfterSeconds=600, name="expiry")],
    "handled_updates": [
        # Telegram re-delivers an update for at most 24 hours; two days covers it and any clock skew.
        IndexModel([("at", ASCENDING)], expireAfterSeconds=2 * 86400, name="expiry"),
    ],
    "dead_letters": [
        # Kept a month: long enough to look into, short enough not to pile up hostile input. Read newest first.
        IndexModel([("at", ASCENDING)], expireAfterSeconds=30 * 86400, name="expiry"),
    ],
    "canned": [
        IndexModel([("name", ASCENDING)], unique=True, name="name"),
    ],
    "presence_log": [
        IndexModel([("operator_id", ASCENDING), ("at", ASCENDING)], name="by_operator"),
    ],
    "duplicates": [
        # One candidate per pair of cards, ever: a dismissal is remembered and never offered again.
        IndexModel([("pair", ASCENDING)], unique=True, name="pair"),
        IndexModel([("status", ASCENDING), ("rank", DESCENDING)], name="pending"),
        IndexModel([("contact_ids", ASCENDING)], name="by_contact"),
    ],
    "merges": [
        IndexModel([("number", ASCENDING)], unique=True, name="number"),
        IndexModel([("kept_id", ASCENDING), ("created_at", DESCENDING)], name="by_kept"),
        IndexModel([("other_id", ASCENDING), ("created_at", DESCENDING)], name="by_other"),
        IndexModel([("status", ASCENDING)], name="status"),
    ],
    "erasures": [
        IndexModel([("contact_ids", ASCENDING), ("started_at", DESCENDING)], name="by_contact"),
        IndexModel([("status", ASCENDING), ("started_at", ASCENDING)], name="status"),
        IndexModel([("sweep_until", ASCENDING)], name="sweep"),
    ],
}


class Storage:
    """Opens MongoDB (starting the embedded engine when asked) and holds the repositories."""

    def __init__(self, settings: StorageSettings, source: str = "<settings>") -> None:
        self.settings = settings
        self.source = source
        self.client: AsyncMongoClient | None = None
        self.uri: str | None = None
        self._engine: EmbeddedMongo | EngineProcess | None = None

    async def open(self) -> None:
        """Connect, create indexes and build the repositories."""
        uri = self.settings.uri
        if uri == "embedded":
            from embedded_mongo import DataDirectoryInUseError, EngineStartError

            data_dir = Path(self.settings.data_dir)
            await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
            self._engine = self._embedded(data_dir)
            try:
                await self._engine.start()
            except DataDirectoryInUseError:
                raise ConfigError(
                    f"{self.source}: storage.data_dir: {data_dir} is in use by another process (is a gateway "
                    "already running on it?); stop it, or set storage.data_dir to another directory"
                ) from None
            except EngineStartError as err:
                raise ConfigError(f"{self.source}: storage.data_dir: {data_dir}: {err}") from None
            uri = self._engine.uri
            logger.info("embedded MongoDB engine on %s, data in %s (storage.engine = %s)", uri, data_dir,
                        self.settings.engine)  # fmt: skip
        self.uri = uri
        self.client = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=10_000)
        db = self.client[self.settings.database]
        await ensure_indexes(db)
        self.bind(db)

    def _embedded(self, data_dir: Path) -> EmbeddedMongo | EngineProcess:
        from embedded_mongo import EmbeddedMongo, EngineProcess, History

        settings = self.settings
        if settings.engine == "process":
            return EngineProcess(data_dir, cache_mb=settings.cache_mb, history_mb=settings.history_mb,
                                 history_hours=settings.history_hours)  # fmt: skip
        history = History(max_bytes=settings.history_mb * 1024 * 1024, max_age_seconds=settings.history_hours * 3600)
        return EmbeddedMongo(data_dir, cache_mb=settings.cache_mb, history=history)

    def bind(self, db: AsyncDatabase) -> None:
        """Build the repositories over a database."""
        self.db = db
        self.contacts = ContactRepo(db["contacts"])
        self.threads = ThreadRepo(db["threads"], db["counters"])
        self.ratings = RatingRepo(db["threads"])
        self.messages = MessageRepo(db["messages"], db["early_reports"])
        self.operators = OperatorRepo(db["operators"], db["presence_log"])
        self.duplicates = DuplicateRepo(db["duplicates"])
        self.merges = MergeRepo(db["merges"], db["counters"])
        self.erasures = ErasureRepo(db["erasures"])
        self.relay = RelayRepo(db["relay"], db["relay_showings"])
        self.canned = CannedRepo(db["canned"])
        self.dead_letters = DeadLetterRepo(db["dead_letters"])
        self.updates = HandledUpdates(db["handled_updates"])
        self.leases = LeaseRepo(db["leases"])
        self.signals = db["signals"]  # notes between processes (gateway.signals); nothing to wrap

    async def close(self) -> None:
        """Close the client, then stop the embedded engine."""
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    async def ping(self) -> bool:
        """Whether the database answers."""
        if self.client is None:
            return False
        try:
            await self.client.admin.command("ping")
        except Exception:  # any failure means "not ready"; the reason is logged
            logger.warning("storage ping failed", exc_info=True)
            return False
        return True


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Create every index the gateway relies on (idempotent)."""
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
