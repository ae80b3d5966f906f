"""The application factory: wires storage, channels, the hub and the HTTP routes."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from channels.base import Channel, SendError
from channels.registry import build_channels
from gateway.api import create_api
from gateway.config import Settings
from gateway.conversations import Conversations
from gateway.csat import Survey
from gateway.dead_letters import DeadLetters
from gateway.duplicates import SWEEP_LEASE as DUPLICATE_SWEEP
from gateway.duplicates import DuplicateFinder
from gateway.events import EventBus
from gateway.hours import AwayNotice
from gateway.http import HttpClient
from gateway.inbox import Inbox
from gateway.inputs import READ_TIMEOUT, file_name, media_type
from gateway.keys import (
    BACKGROUND,
    BUS,
    CHANNELS,
    CONVERSATIONS,
    DEAD_LETTERS,
    DUPLICATES,
    HTTP,
    INBOX,
    LEASES,
    MEDIA,
    MEDIA_SOURCES,
    MERGER,
    METRICS,
    OUTBOX,
    PRIVACY,
    PROFILES,
    SETTINGS,
    SIGNALS,
    STORE,
    SURVEY,
)
from gateway.leases import Leases
from gateway.logs import install_context
from gateway.media import MediaLinks, MediaSources
from gateway.merge import Merger
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.privacy import Privacy
from gateway.profiles import Profiles
from gateway.retention import Retention
from gateway.signals import Signals
from gateway.storage.mongo import Storage
from gateway.tasks import stop

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings) -> web.Application:
    """Build the gateway; resources are opened when the app starts and closed when it stops."""
    install_context()
    app = web.Application(middlewares=[quiet_disconnects])
    store = Storage(settings.storage, settings.source)
    bus = EventBus()
    metrics = Metrics()
    http = HttpClient()
    if settings.server.secret is None:
        logger.info("no server.secret set: media links are valid for this process only")
    links = MediaLinks(settings.server.secret or secrets.token_urlsafe(32), settings.server.public_url)
    sources = MediaSources()
    channels: dict[str, Channel] = {}
    outbox = Outbox(store, channels, bus, metrics, settings.delivery, media_url=links.url)
    conversations = Conversations(store, bus, outbox)
    merger = Merger(store, bus, conversations)
    profiles = Profiles(store, bus, settings)
    dead_letters = DeadLetters(store, metrics)
    leases = Leases(store, settings.server.lease_seconds)
    signals = Signals(store, leases.holder)
    survey = Survey(store, bus, conversations, settings)
    inbox = Inbox(
        store, bus, outbox, conversations, profiles, merger, sources, dead_letters, metrics, leases, signals, survey
    )
    channels.update(build_channels(settings, inbox, http))
    for name, channel in channels.items():
        sources.add(name, channel.fetch_media)

    app[SETTINGS] = settings
    app[READ_TIMEOUT] = settings.server.read_timeout
    app[STORE] = store
    app[BUS] = bus
    app[HTTP] = http
    app[METRICS] = metrics
    app[MEDIA] = links
    app[MEDIA_SOURCES] = sources
    app[OUTBOX] = outbox
    app[CONVERSATIONS] = conversations
    app[PROFILES] = profiles
    app[INBOX] = inbox
    app[SURVEY] = survey
    app[DEAD_LETTERS] = dead_letters
    app[LEASES] = leases
    app[SIGNALS] = signals
    app[CHANNELS] = channels
    app[MERGER] = merger
    app[DUPLICATES] = DuplicateFinder(store, bus, settings, merger)
    app[DUPLICATES].subscribe()
    # Before the operator side subscribes: a customer hears at once when nobody is online to answer.
    AwayNotice(store, bus, conversations, settings).subscribe()
    app[PRIVACY] = privacy = Privacy(store, bus, links)

    for channel in channels.values():
        channel.register(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/media/{token}", media_view)
    if settings.api is not None:
        app.add_subapp("/api/v1", create_api())

    retention = Retention(store, privacy, settings.privacy)  # safe in every process: each step may be repeated
    finder = app[DUPLICATES]
    app[BACKGROUND] = [
        leases.keep_alive,
        outbox.run,
        signals.run,
        retention.run,
        lambda: leases.run(DUPLICATE_SWEEP, finder.run),
    ]  # the operator side adds its loops
    # Started in this order, stopped in reverse: background loops stop first, queued events are
    # handled while the operator bot, channels and storage are still open, storage closes last.
    app.cleanup_ctx.extend([http_ctx, storage_ctx, merges_ctx, channels_ctx])
    if settings.operator_bot is not None:  # the operator side, aiogram and all, only when configured
        from operators.setup import setup_operators

        setup_operators(app)
    app.cleanup_ctx.extend([events_ctx, background_ctx])
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner `gateway run` serves the app with: a connection that has not sent its request's headers within
    server.read_timeout is closed (aiohttp's first keep-alive timer); bodies get as long again (read_body)."""
    return web.AppRunner(app, keepalive_timeout=app[SETTINGS].server.read_timeout)


@web.middleware
async def quiet_disconnects(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that goes away mid-request is the client's business: one info line, not an error traceback."""
    try:
        return await handler(request)
    except ConnectionResetError:
        logger.info("%s %s: the client went away mid-request", request.method, request.path)
        raise web.HTTPBadRequest(text="the connection was lost") from None


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one HTTP client session every bot and download shares; closed after everything that uses it."""
    await app[HTTP].open()
    yield
    await app[HTTP].close()


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    await store.operators.sync_config(app[SETTINGS].operators)
    yield
    await store.close()


async def merges_ctx(app: web.Application) -> AsyncIterator[None]:
    """Finish merges a stopped process left half done (each step is safe to repeat)."""
    await app[MERGER].recover()
    yield


async def channels_ctx(app: web.Application) -> AsyncIterator[None]:
    started: list[Channel] = []
    try:
        for channel in app[CHANNELS].values():
            await channel.start()
            started.append(channel)
        yield
    finally:
        for channel in reversed(started):
            await channel.close()


async def events_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[BUS].close()


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every long-running loop (outbox retries, routing rounds), cancelled and awaited on shutdown."""
    tasks = [asyncio.create_task(run(), name=getattr(run, "__qualname__", "loop")) for run in app[BACKGROUND]]
    yield
    await stop(*tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s had stopped", task.get_name(), exc_info=task.exception())


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Storage answers and every channel is started; 503 otherwise."""
    storage = await request.app[STORE].ping()
    channels = {name: channel.ready() for name, channel in request.app[CHANNELS].items()}
    ready = storage and all(channels.values())
    # How this process learns of the others' notes: "change stream", "polling", or null (not yet, or no need).
    body = {"ready": ready, "storage": storage, "channels": channels, "peers": request.app[SIGNALS].mode}
    return web.json_response(body, status=200 if ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus text format."""
    metrics = request.app[METRICS]
    metrics.open_threads.set(await request.app[STORE].threads.count_open())
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def media_view(request: web.Request) -> web.Response:
    """Serve a file through a signed, expiring link (Twilio fetches operator files this way)."""
    resolved = request.app[MEDIA].resolve(request.match_info["token"])
    message = await request.app[STORE].messages.get(resolved[0]) if resolved else None
    if message is None or resolved is None or not 0 <= resolved[1] < len(message.content.media):
        raise web.HTTPNotFound(text="link expired or unknown")
    media = message.content.media[resolved[1]]
    try:
        data = await request.app[MEDIA_SOURCES].fetch(media)
    except SendError as err:
        raise web.HTTPBadGateway(text=err.reason) from None
    headers = {"Cache-Control": "private, max-age=300"}
    if name := file_name(media.name):
        fallback = name.encode("ascii", "replace").decode().replace('"', "")
        headers["Content-Disposition"] = f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    content_type = media_type(media.mime_type) or "application/octet-stream"
    return web.Response(body=data, content_type=content_type, headers=headers)
