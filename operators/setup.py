"""Wires presence, routing and the operator bot into the app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from gateway.keys import (
    BACKGROUND,
    BUS,
    CONVERSATIONS,
    DEAD_LETTERS,
    DUPLICATES,
    HTTP,
    LEASES,
    MEDIA_SOURCES,
    MERGER,
    OUTBOX,
    PRIVACY,
    PROFILES,
    SETTINGS,
    STORE,
    SURVEY,
)
from gateway.translation import Translator
from operators.bot import OperatorBot
from operators.csat import RatingAlerts
from operators.duplicates import DuplicateAlerts
from operators.erasure import TelegramCopies
from operators.indicators import DeliveryMarks
from operators.keys import MIRROR_QUEUE, OPERATOR_BOT, PRESENCE, ROUTING
from operators.mirror import Mirror
from operators.mirror_queue import MirrorQueue
from operators.presence import Presence
from operators.reachability import Reachability
from operators.relay import SOURCE, Relay
from operators.releases import Releases
from operators.routing import Routing
from operators.sweep import LEASE as SWEEP_LEASE
from operators.sweep import RelaySweep
from operators.translation import Translations
from operators.visitors import Visitors

logger = logging.getLogger(__name__)


def setup_operators(app: web.Application) -> None:
    """Presence, routing and the operator bot; without [operator_bot] conversations wait for the API."""
    settings, store, bus, conversations = app[SETTINGS], app[STORE], app[BUS], app[CONVERSATIONS]
    assert settings.operator_bot is not None
    presence = Presence(store, bus)
    routing = Routing(store, bus, conversations, settings)
    relay = Relay(store, app[MEDIA_SOURCES], settings, holder=app[LEASES].holder)
    translator = Translator(settings.translation, app[HTTP]) if settings.translation else None
    bot = OperatorBot(
        settings,
        store,
        relay,
        app[HTTP],
        app[DEAD_LETTERS],
        app[LEASES],
        conversations=conversations,
        profiles=app[PROFILES],
        outbox=app[OUTBOX],
        presence=presence,
        routing=routing,
        merger=app[MERGER],
        finder=app[DUPLICATES],
        privacy=app[PRIVACY],
        survey=app[SURVEY],
        translator=translator,
    )
    # Routing runs before the relay for each event, so a message that gets its thread
    # assigned is shown once, with the card.
    routing.subscribe()
    relay.subscribe(bus)
    Releases(store, relay).subscribe(bus)
    Visitors(store, relay).subscribe(bus)
    if translator is not None:  # after the relay: a message is shown first, its translation under it
        Translations(store, relay, translator, settings).subscribe(bus)
    DuplicateAlerts(store, relay, app[DUPLICATES]).subscribe(bus)
    DeliveryMarks(store, relay).subscribe(bus)
    RatingAlerts(store, relay).subscribe(bus)
    mirror = None
    if settings.operator_bot.supervisors_chat_id is not None:
        app[MIRROR_QUEUE] = MirrorQueue()
        mirror = Mirror(store, relay, settings, app[MIRROR_QUEUE])
        mirror.subscribe(bus)
    app[MEDIA_SOURCES].add(SOURCE, relay.fetch_media)
    app[PRIVACY].add_eraser(TelegramCopies(relay).erase)
    relay.on_unreachable = Reachability(store, presence, relay).unreachable
    app[PRESENCE], app[ROUTING], app[OPERATOR_BOT] = presence, routing, bot
    lag = timedelta(seconds=settings.operator_bot.catch_up_seconds)
    sweep = RelaySweep(store, relay, app[LEASES], lag, mirror)
    app[BACKGROUND].append(lambda: app[LEASES].run("routing", routing.run))
    app[BACKGROUND].append(lambda: app[LEASES].run(SWEEP_LEASE, sweep.run))
    bot.register(app)
    app.cleanup_ctx.append(_bot_ctx)
    if MIRROR_QUEUE in app:
        app.cleanup_ctx.append(_mirror_ctx)


async def _bot_ctx(app: web.Application) -> AsyncIterator[None]:
    bot = app[OPERATOR_BOT]
    await bot.start()
    yield
    await bot.close()


async def _mirror_ctx(app: web.Application) -> AsyncIterator[None]:
    """Stopped after the bus has handed it its last posts, before the bot's session closes."""
    yield
    await app[MIRROR_QUEUE].close()
