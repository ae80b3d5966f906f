"""The operator side's application state, as typed aiohttp AppKeys."""

from __future__ import annotations

from aiohttp import web

from operators.bot import OperatorBot
from operators.mirror_queue import MirrorQueue
from operators.presence import Presence
from operators.routing import Routing

PRESENCE = web.AppKey("presence", Presence)
ROUTING = web.AppKey("routing", Routing)
OPERATOR_BOT = web.AppKey("operator_bot", OperatorBot)
MIRROR_QUEUE = web.AppKey("mirror_queue", MirrorQueue)
