"""The core's application state, as typed aiohttp AppKeys (the operator side keeps its own in operators.keys)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from channels.base import Channel
from gateway.config import Settings
from gateway.conversations import Conversations
from gateway.csat import Survey
from gateway.dead_letters import DeadLetters
from gateway.duplicates import DuplicateFinder
from gateway.events import EventBus
from gateway.http import HttpClient
from gateway.inbox import Inbox
from gateway.leases import Leases
from gateway.media import MediaLinks, MediaSources
from gateway.merge import Merger
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.privacy import Privacy
from gateway.profiles import Profiles
from gateway.signals import Signals
from gateway.storage.mongo import Storage

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Storage)
BUS = web.AppKey("bus", EventBus)
HTTP = web.AppKey("http", HttpClient)
OUTBOX = web.AppKey("outbox", Outbox)
CONVERSATIONS = web.AppKey("conversations", Conversations)
PROFILES = web.AppKey("profiles", Profiles)
INBOX = web.AppKey("inbox", Inbox)
DEAD_LETTERS = web.AppKey("dead_letters", DeadLetters)
MEDIA = web.AppKey("media", MediaLinks)
MEDIA_SOURCES = web.AppKey("media_sources", MediaSources)
CHANNELS: web.AppKey[dict[str, Channel]] = web.AppKey("channels")
# Long-running loops, started after everything else and cancelled first.
BACKGROUND: web.AppKey[list[Callable[[], Coroutine[Any, Any, None]]]] = web.AppKey("background")
MERGER = web.AppKey("merger", Merger)
LEASES = web.AppKey("leases", Leases)
SIGNALS = web.AppKey("signals", Signals)
DUPLICATES = web.AppKey("duplicates", DuplicateFinder)
PRIVACY = web.AppKey("privacy", Privacy)
SURVEY = web.AppKey("survey", Survey)
