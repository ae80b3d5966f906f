"""Every piece of application state, as a typed aiohttp AppKey."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from channels.base import Channel
from gateway.config import Settings
from gateway.contacts import Duplicates
from gateway.events import EventBus
from gateway.inbox import Inbox
from gateway.media import MediaLinks
from gateway.merge import Merger
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.storage.mongo import Store
from operators.bot import OperatorBot
from operators.presence import Presence
from operators.routing import Router

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
BUS = web.AppKey("bus", EventBus)
OUTBOX = web.AppKey("outbox", Outbox)
INBOX = web.AppKey("inbox", Inbox)
MEDIA = web.AppKey("media", MediaLinks)
CHANNELS = web.AppKey("channels", dict[str, Channel])
BACKGROUND = web.AppKey("background", list[Callable[[], Awaitable[None]]])
MERGER = web.AppKey("merger", Merger)
DUPLICATES = web.AppKey("duplicates", Duplicates)
PRESENCE = web.AppKey("presence", Presence)
ROUTING = web.AppKey("routing", Router)
OPERATOR_BOT = web.AppKey("operator_bot", OperatorBot)
